//! The query of an analytics request: `from`/`to` (RFC 3339; the 24 hours up to now by default), `limit` and
//! `period` where the route takes them; anything else is a `400` naming the parameter.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::json;

use crate::api::{query_pairs, ApiError, HttpRequest};
use crate::model::Timestamp;

/// The longest period one request may cover.
pub const MAX_RANGE_DAYS: i64 = 366;

pub(crate) fn invalid_param(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid query parameter {name}"))
        .with_detail(json!({ "parameter": name, "value": value, "expected": expected }))
}

/// The validated query of an analytics request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Query {
    pub(crate) window: Window,
    pub(crate) limit: Option<usize>,
    pub(crate) period: Option<Period>,
}

/// `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Period {
    Day,
    Week,
}

impl Period {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }

    /// The start of the UTC day / ISO week (Monday 00:00 UTC) holding `t`.
    pub(crate) fn floor(self, t: Timestamp) -> Timestamp {
        let day = t.date_naive();
        let day = match self {
            Period::Day => day,
            Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        };
        day.and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(t)
    }

    pub(crate) fn next(self, start: Timestamp) -> Timestamp {
        start + Duration::days(if self == Period::Day { 1 } else { 7 })
    }
}

impl Query {
    pub(crate) fn parse(req: &HttpRequest, route: &str, now: Timestamp) -> Result<Query, ApiError> {
        let (mut from, mut to, mut limit, mut period) = (None, None, None, None);
        let limit_max = match route {
            "top-events" => Some(100),
            "recent-high-threats" => Some(500),
            _ => None,
        };
        for (k, v) in query_pairs(req) {
            match k.as_str() {
                "from" => from = Some(parse_time("from", &v)?),
                "to" => to = Some(parse_time("to", &v)?),
                "limit" if limit_max.is_some() => {
                    let max = limit_max.unwrap_or(1);
                    limit = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=max).contains(n))
                            .ok_or_else(|| invalid_param("limit", &v, &format!("a number from 1 to {max}")))?,
                    );
                }
                "period" if route == "response-times" => {
                    period = Some(match v.as_str() {
                        "day" => Period::Day,
                        "week" => Period::Week,
                        _ => return Err(invalid_param("period", &v, "day or week")),
                    })
                }
                other => {
                    let mut allowed = vec!["from", "to"];
                    if limit_max.is_some() {
                        allowed.push("limit");
                    }
                    if route == "response-times" {
                        allowed.push("period");
                    }
                    return Err(invalid_param(other, &v, &format!("one of {}", allowed.join(", "))));
                }
            }
        }
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(invalid_param("from", &from.to_rfc3339(), "a time before to"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(invalid_param("from", &from.to_rfc3339(), &format!("at most {MAX_RANGE_DAYS} days before to")));
        }
        Ok(Query { window: Window { from, to }, limit, period })
    }
}

fn parse_time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid_param(name, v, "an RFC 3339 time, e.g. 2026-03-10T12:00:00Z"))
}

/// The start of the UTC hour holding `t`.
pub fn floor_hour(t: Timestamp) -> Timestamp {
    t.with_nanosecond(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_minute(0)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn periods_and_hours() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).unwrap();
        // 2026-03-10 is a Tuesday: its ISO week starts on Monday the 9th.
        assert_eq!(Period::Week.floor(at(13, 5)), Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap());
        assert_eq!(Period::Day.floor(at(13, 5)), Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap());
        assert_eq!(floor_hour(at(13, 5)), at(13, 0));
    }
}
