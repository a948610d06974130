//! Packing many small JSON items into few queue messages, each within the SQS size limit.

use serde::Serialize;

/// Packs already-encoded JSON values into bodies of the form `{"<key>":[v1,v2,…]}`, each at most `max_bytes`.
/// A single value larger than fits alone is an error naming its index (callers bound item sizes first).
pub fn pack_encoded(items: &[String], key: &str, max_bytes: usize) -> Result<Vec<String>, usize> {
    let prefix = format!("{{\"{key}\":[");
    let suffix = "]}";
    let overhead = prefix.len() + suffix.len();
    let mut bodies = Vec::new();
    let mut current = String::new();
    for (i, item) in items.iter().enumerate() {
        if overhead + item.len() > max_bytes {
            return Err(i);
        }
        let extra = if current.is_empty() { prefix.len() + item.len() } else { 1 + item.len() };
        if !current.is_empty() && current.len() + extra + suffix.len() > max_bytes {
            current.push_str(suffix);
            bodies.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(&prefix);
        } else {
            current.push(',');
        }
        current.push_str(item);
    }
    if !current.is_empty() {
        current.push_str(suffix);
        bodies.push(current);
    }
    Ok(bodies)
}

/// Encodes and packs `items` (see [`pack_encoded`]).
pub fn pack<T: Serialize>(items: &[T], key: &str, max_bytes: usize) -> Result<Vec<String>, usize> {
    let encoded: Vec<String> =
        items.iter().enumerate().map(|(i, it)| serde_json::to_string(it).map_err(|_| i)).collect::<Result<_, _>>()?;
    pack_encoded(&encoded, key, max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_into_valid_json_bodies_within_the_limit_and_keeps_order() {
        let items: Vec<String> =
            (0..1000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50))).collect();
        let bodies = pack_encoded(&items, "events", 4096).unwrap();
        assert!(bodies.len() > 1);
        let mut seen = Vec::new();
        for b in &bodies {
            assert!(b.len() <= 4096, "body of {} bytes", b.len());
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            for e in v["events"].as_array().unwrap() {
                seen.push(e["n"].as_u64().unwrap());
            }
        }
        assert_eq!(seen, (0..1000).collect::<Vec<u64>>());
    }

    #[test]
    fn an_item_exactly_at_the_limit_fits_and_one_byte_more_does_not() {
        let overhead = "{\"e\":[]}".len();
        let fits = format!("\"{}\"", "a".repeat(100 - overhead - 2));
        assert_eq!(pack_encoded(std::slice::from_ref(&fits), "e", 100).unwrap(), vec![format!("{{\"e\":[{fits}]}}")]);
        let too_big = format!("\"{}\"", "a".repeat(100 - overhead - 1));
        assert_eq!(pack_encoded(&[fits, too_big], "e", 100), Err(1));
    }

    #[test]
    fn nothing_to_pack_gives_no_bodies() {
        assert!(pack_encoded(&[], "e", 100).unwrap().is_empty());
    }
}
