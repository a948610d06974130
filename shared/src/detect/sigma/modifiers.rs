//! Sigma values and their modifiers (the specification's appendix), compiled into [`Check`]s.
//!
//! A string value is parsed into parts (literal bytes, `*`, `?`, alternatives), the modifiers transform it
//! in the order written (`windash`, `base64`, `base64offset`, `wide`/`utf16*`, `expand`, and the position
//! modifiers `contains`/`startswith`/`endswith` that add `*`), and the result is grouped by shape into a
//! [`TextMatch`]. Matching ignores case unless `cased` (regular expressions follow their own `i` flag).

use std::sync::Arc;

use base64::Engine as _;
use ipnet::IpNet;

use super::predicate::{Check, Cmp, Literal, Node, Position, Target, TextMatch, TimePart};
use super::scan::LiteralSets;

/// Most values one detection item may expand to (windash permutations feeding an encoding, placeholders).
const MAX_EXPANSION: usize = 1024;

/// A YAML scalar of a detection value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Int(i64),
    Real(String),
    Bool(bool),
    Null,
}

impl Scalar {
    fn text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) | Scalar::Real(s) => Some(s.clone()),
            Scalar::Int(n) => Some(n.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Null => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Scalar::Int(n) => Some(*n as f64),
            Scalar::Real(s) | Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Modifier {
    Contains,
    Startswith,
    Endswith,
    All,
    Cased,
    Exists,
    Re,
    ReFlag(char),
    Cidr,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16Bom,
    Windash,
    Compare(Cmp),
    Neq,
    FieldRef,
    Expand,
    Time(TimePart),
}

fn parse_modifier(name: &str) -> Result<Modifier, String> {
    Ok(match name {
        "contains" => Modifier::Contains,
        "startswith" => Modifier::Startswith,
        "endswith" => Modifier::Endswith,
        "all" => Modifier::All,
        "cased" => Modifier::Cased,
        "exists" => Modifier::Exists,
        "re" => Modifier::Re,
        "i" | "ignorecase" => Modifier::ReFlag('i'),
        "m" | "multiline" => Modifier::ReFlag('m'),
        "s" | "dotall" => Modifier::ReFlag('s'),
        "cidr" => Modifier::Cidr,
        "base64" => Modifier::Base64,
        "base64offset" => Modifier::Base64Offset,
        "wide" | "utf16le" => Modifier::Utf16Le,
        "utf16be" => Modifier::Utf16Be,
        "utf16" => Modifier::Utf16Bom,
        "windash" => Modifier::Windash,
        "lt" => Modifier::Compare(Cmp::Lt),
        "lte" => Modifier::Compare(Cmp::Lte),
        "gt" => Modifier::Compare(Cmp::Gt),
        "gte" => Modifier::Compare(Cmp::Gte),
        "neq" => Modifier::Neq,
        "fieldref" => Modifier::FieldRef,
        "expand" => Modifier::Expand,
        "minute" => Modifier::Time(TimePart::Minute),
        "hour" => Modifier::Time(TimePart::Hour),
        "day" => Modifier::Time(TimePart::Day),
        "week" => Modifier::Time(TimePart::Week),
        "month" => Modifier::Time(TimePart::Month),
        "year" => Modifier::Time(TimePart::Year),
        other => return Err(format!("unknown value modifier `{other}`")),
    })
}

/// One piece of a Sigma string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
    /// One of these (the `windash` alternatives).
    Choice(Vec<Vec<u8>>),
    /// `%name%` under `expand`.
    Placeholder(String),
}

/// A Sigma string after escapes: wildcards are parts, escaped ones are literal.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct SigmaStr {
    parts: Vec<Part>,
}

impl SigmaStr {
    /// `\*`, `\?` and `\\` escape; any other backslash is literal (so `C:\Windows` needs no doubling).
    fn parse(text: &str) -> SigmaStr {
        let mut s = SigmaStr::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        s.push_char(next);
                    }
                    _ => s.push_char('\\'),
                },
                '*' => s.parts.push(Part::Star),
                '?' => s.parts.push(Part::One),
                other => s.push_char(other),
            }
        }
        s
    }

    fn literal(bytes: Vec<u8>) -> SigmaStr {
        SigmaStr { parts: vec![Part::Lit(bytes)] }
    }

    fn push_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_bytes(c.encode_utf8(&mut buf).as_bytes());
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        match self.parts.last_mut() {
            Some(Part::Lit(b)) => b.extend_from_slice(bytes),
            _ => self.parts.push(Part::Lit(bytes.to_vec())),
        }
    }

    fn push(&mut self, part: Part) {
        match part {
            Part::Lit(b) => self.push_bytes(&b),
            other => self.parts.push(other),
        }
    }

    fn concat(mut self, other: SigmaStr) -> SigmaStr {
        for p in other.parts {
            self.push(p);
        }
        self
    }

    /// The plain bytes, when the string has no wildcard or alternative.
    fn plain(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                _ => return None,
            }
        }
        Some(out)
    }

    fn starts_with_star(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Star))
    }

    fn ends_with_star(&self) -> bool {
        matches!(self.parts.last(), Some(Part::Star))
    }

    fn wrap(mut self, start: bool, end: bool) -> SigmaStr {
        if start && !self.starts_with_star() {
            self.parts.insert(0, Part::Star);
        }
        if end && !self.ends_with_star() {
            self.parts.push(Part::Star);
        }
        self
    }

    /// Each `-` or `/` that starts a word (pySigma's `\B[-/]\b`) becomes any of `-`, `/`, `–`, `—`, `―`.
    fn windash(self) -> SigmaStr {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut out = SigmaStr::default();
        for part in self.parts {
            let Part::Lit(bytes) = part else {
                out.parts.push(part);
                continue;
            };
            let mut run = Vec::new();
            for (i, &b) in bytes.iter().enumerate() {
                let starts_word = matches!(b, b'-' | b'/')
                    && (i == 0 || !word(bytes[i - 1]))
                    && bytes.get(i + 1).is_some_and(|&n| word(n));
                if starts_word {
                    if !run.is_empty() {
                        out.push(Part::Lit(std::mem::take(&mut run)));
                    }
                    out.parts.push(Part::Choice(
                        ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"].iter().map(|s| s.as_bytes().to_vec()).collect(),
                    ));
                } else {
                    run.push(b);
                }
            }
            if !run.is_empty() {
                out.push(Part::Lit(run));
            }
        }
        out
    }

    /// Every concrete string the alternatives stand for (wildcards stay).
    fn expand_choices(&self) -> Result<Vec<SigmaStr>, String> {
        let mut out = vec![SigmaStr::default()];
        for p in &self.parts {
            match p {
                Part::Choice(alts) => {
                    if out.len() * alts.len() > MAX_EXPANSION {
                        return Err(format!("expands to more than {MAX_EXPANSION} values"));
                    }
                    out = out
                        .into_iter()
                        .flat_map(|s| alts.iter().map(move |a| s.clone().concat(SigmaStr::literal(a.clone()))))
                        .collect();
                }
                other => {
                    for s in &mut out {
                        s.push(other.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `%name%` in literals become placeholders; `\%` is a plain percent sign.
    fn with_placeholders(self) -> SigmaStr {
        let mut out = SigmaStr::default();
        for part in self.parts {
            let Part::Lit(bytes) = part else {
                out.parts.push(part);
                continue;
            };
            let mut i = 0;
            let mut run = Vec::new();
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' if bytes.get(i + 1) == Some(&b'%') => {
                        run.push(b'%');
                        i += 2;
                    }
                    b'%' => match bytes[i + 1..].iter().position(|&b| b == b'%') {
                        Some(len) if len > 0 => {
                            if !run.is_empty() {
                                out.push(Part::Lit(std::mem::take(&mut run)));
                            }
                            let name = String::from_utf8_lossy(&bytes[i + 1..i + 1 + len]).into_owned();
                            out.parts.push(Part::Placeholder(name));
                            i += len + 2;
                        }
                        _ => {
                            run.push(b'%');
                            i += 1;
                        }
                    },
                    b => {
                        run.push(b);
                        i += 1;
                    }
                }
            }
            if !run.is_empty() {
                out.push(Part::Lit(run));
            }
        }
        out
    }

    fn map_literals(self, f: impl Fn(&[u8]) -> Result<Vec<u8>, String>) -> Result<SigmaStr, String> {
        let mut out = SigmaStr::default();
        for part in self.parts {
            match part {
                Part::Lit(b) => out.push(Part::Lit(f(&b)?)),
                Part::Choice(alts) => {
                    out.parts.push(Part::Choice(alts.iter().map(|a| f(a)).collect::<Result<_, _>>()?))
                }
                other => out.parts.push(other),
            }
        }
        Ok(out)
    }
}

fn utf16(bytes: &[u8], big_endian: bool) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "utf16 of a value that is not text".to_string())?;
    Ok(text.encode_utf16().flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() }).collect())
}

fn base64_of(s: &SigmaStr, modifier: &str) -> Result<Vec<u8>, String> {
    s.plain().ok_or_else(|| format!("`{modifier}` of a value with wildcards is not defined"))
}

/// The three forms `value` takes inside Base64 text depending on its offset (pySigma's algorithm): encode
/// it after 0, 1 and 2 filler bytes, and keep only the characters that do not depend on the neighbours.
fn base64_offsets(value: &[u8]) -> Vec<Vec<u8>> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    let b64 = base64::engine::general_purpose::STANDARD;
    (0..3)
        .filter_map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(value);
            let encoded = b64.encode(&shifted).into_bytes();
            let end = encoded.len().checked_sub(END[(value.len() + i) % 3])?;
            encoded.get(START[i]..end).filter(|s| !s.is_empty()).map(<[u8]>::to_vec)
        })
        .collect()
}

/// What resolves field names (the mapping, with the rule's logsource) and placeholders.
pub(crate) trait Resolver {
    fn field(&self, name: &str) -> Result<Target, String>;
    fn placeholder(&self, name: &str) -> Option<&[String]>;
    /// Where `contains` literals go, to be searched once per value for all rules.
    fn literals(&self) -> &LiteralSets;
}

/// Compiles one detection item, `field|mod|mod: values`, into a node. `field` is `None` for keywords.
pub(crate) fn compile_item(
    field: Option<&str>,
    modifier_names: &[&str],
    values: &[Scalar],
    resolver: &dyn Resolver,
) -> Result<Node, String> {
    let modifiers: Vec<Modifier> = modifier_names.iter().map(|m| parse_modifier(m)).collect::<Result<_, _>>()?;
    let target = match field {
        Some(name) => resolver.field(name)?,
        None => Target::Keywords,
    };
    if values.is_empty() {
        return Err("a detection item without a value".to_string());
    }
    let has = |m: Modifier| modifiers.contains(&m);
    let all = has(Modifier::All);
    let combine = |nodes: Vec<Node>| if all { Node::All(nodes) } else { Node::Any(nodes) };
    let test = |check: Check| Node::Test(target.clone(), check);

    if has(Modifier::Exists) {
        if field.is_none() || modifiers.len() > 1 || values.len() != 1 {
            return Err("`exists` takes one true/false value on a field, with no other modifier".to_string());
        }
        return match &values[0] {
            Scalar::Bool(b) => Ok(test(Check::Exists(*b))),
            Scalar::Str(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                Ok(test(Check::Exists(s.eq_ignore_ascii_case("true"))))
            }
            other => Err(format!("`exists` needs true or false, not {other:?}")),
        };
    }
    if has(Modifier::Cidr) {
        let mut nodes = Vec::new();
        for v in values {
            let text = v.text().ok_or("`cidr` needs a network, not null")?;
            let net = text
                .trim()
                .parse::<IpNet>()
                .or_else(|_| text.trim().parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`cidr`: {text:?} is not a network like 10.0.0.0/8"))?;
            nodes.push(test(Check::Cidr(vec![net])));
        }
        return Ok(combine(nodes));
    }
    let numeric = |v: &Scalar| matches!(v, Scalar::Int(_) | Scalar::Real(_));
    if has(Modifier::Neq) && values.iter().all(numeric) {
        let nodes = values.iter().filter_map(Scalar::number).map(|n| test(Check::Compare(Cmp::Neq, n))).collect();
        // Different from every value given (a list of numbers is "none of them").
        return Ok(Node::All(nodes));
    }
    let time = modifiers.iter().find_map(|m| if let Modifier::Time(p) = m { Some(*p) } else { None });
    let compare = modifiers.iter().find_map(|m| if let Modifier::Compare(c) = m { Some(*c) } else { None });
    if time.is_some() || compare.is_some() {
        let mut nodes = Vec::new();
        for v in values {
            let n = v.number().ok_or_else(|| format!("a numeric modifier needs a number, not {v:?}"))?;
            nodes.push(match time {
                Some(part) => test(Check::Time(part, compare.unwrap_or(Cmp::Eq), n as i64)),
                None => test(Check::Compare(compare.unwrap_or(Cmp::Eq), n)),
            });
        }
        return Ok(combine(nodes));
    }
    if has(Modifier::FieldRef) {
        if field.is_none() {
            return Err("`fieldref` needs a field".to_string());
        }
        let position = position_of(&modifiers);
        let mut nodes = Vec::new();
        for v in values {
            let name = v.text().ok_or("`fieldref` needs a field name, not null")?;
            let other = resolver.field(&name)?;
            let check = Check::FieldRef { other, position, cased: has(Modifier::Cased) };
            nodes.push(if has(Modifier::Neq) {
                Node::All(vec![test(Check::Exists(true)), Node::Not(Box::new(test(check)))])
            } else {
                test(check)
            });
        }
        return Ok(combine(nodes));
    }
    if has(Modifier::Re) {
        if modifiers.iter().position(|m| *m == Modifier::Re)
            != modifiers.iter().position(|m| !matches!(m, Modifier::All | Modifier::Cased))
        {
            return Err("`re` must come before the modifiers of its value".to_string());
        }
        let flags: String =
            modifiers.iter().filter_map(|m| if let Modifier::ReFlag(f) = m { Some(*f) } else { None }).collect();
        let mut matches = Vec::new();
        for v in values {
            let pattern = v.text().ok_or("`re` needs a pattern, not null")?;
            let re = regex::bytes::RegexBuilder::new(&pattern)
                .case_insensitive(flags.contains('i'))
                .multi_line(flags.contains('m'))
                .dot_matches_new_line(flags.contains('s'))
                .build()
                .map_err(|e| unsupported_regex(&pattern, &e))?;
            matches.push(TextMatch { regexes: vec![re], ..TextMatch::default() });
        }
        return Ok(text_node(target, matches, all));
    }
    if let Some(m) = modifiers.iter().find(|m| matches!(m, Modifier::ReFlag(_))) {
        return Err(format!("the regular expression flag {m:?} needs `re`"));
    }

    // Strings: null and '' are tests of absence; everything else goes through the transformations.
    let cased = has(Modifier::Cased);
    let keyword_default = field.is_none()
        && !modifiers.iter().any(|m| matches!(m, Modifier::Contains | Modifier::Startswith | Modifier::Endswith));
    let mut absent = false;
    let mut groups: Vec<Vec<SigmaStr>> = Vec::new();
    for v in values {
        let Some(text) = v.text() else {
            absent = true;
            continue;
        };
        let plain_empty = text.is_empty()
            && !modifiers.iter().any(|m| matches!(m, Modifier::Contains | Modifier::Startswith | Modifier::Endswith));
        if plain_empty && field.is_some() {
            absent = true;
            continue;
        }
        let mut alternatives = vec![SigmaStr::parse(&text)];
        for m in &modifiers {
            alternatives = transform(alternatives, *m, resolver)?;
        }
        if keyword_default {
            alternatives = alternatives.into_iter().map(|s| s.wrap(true, true)).collect();
        }
        groups.push(alternatives);
    }
    if absent && all {
        return Err("`all` with a null or empty value".to_string());
    }
    let mut nodes = Vec::new();
    if absent {
        nodes.push(test(Check::Exists(false)));
    }
    if !groups.is_empty() {
        let text = if all {
            compile_all(groups, cased, &target, resolver.literals())?
        } else {
            Check::Text(Arc::new(compile_any(
                groups.into_iter().flatten().collect(),
                cased,
                &target,
                resolver.literals(),
            )?))
        };
        nodes.push(test(text));
    }
    let node = if nodes.len() == 1 { nodes.pop().unwrap_or(Node::Const(false)) } else { Node::Any(nodes) };
    if has(Modifier::Neq) {
        // Present, and none of the values.
        return Ok(Node::All(vec![Node::Test(target, Check::Exists(true)), Node::Not(Box::new(node))]));
    }
    Ok(node)
}

/// The values of a TOML `[rule.match]` field (lower case; `*` at either end for prefix, suffix or both; `*`
/// alone for any value) as the equivalent text check, so a logsource route is tested without allocating.
pub(crate) fn match_values(accepted: &[String], target: &Target, literals: &LiteralSets) -> Result<Check, String> {
    let values = accepted
        .iter()
        .map(|a| {
            if a == "*" {
                return SigmaStr { parts: vec![Part::Star] };
            }
            let (start, rest) = a.strip_prefix('*').map_or((false, a.as_str()), |r| (true, r));
            let (end, core) = rest.strip_suffix('*').map_or((false, rest), |r| (true, r));
            SigmaStr::literal(core.as_bytes().to_vec()).wrap(start, end)
        })
        .collect();
    Ok(Check::Text(Arc::new(compile_any(values, false, target, literals)?)))
}

fn text_node(target: Target, matches: Vec<TextMatch>, all: bool) -> Node {
    if all {
        Node::Test(target, Check::AllText(matches.into_iter().map(Arc::new).collect()))
    } else {
        let mut merged = TextMatch::default();
        for m in matches {
            merged.regexes.extend(m.regexes);
        }
        Node::Test(target, Check::Text(Arc::new(merged)))
    }
}

fn unsupported_regex(pattern: &str, e: &regex::Error) -> String {
    let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
    format!("regular expression {pattern:?} is not supported (Vigil's engine has no look-around or back-references): {first}")
}

fn position_of(modifiers: &[Modifier]) -> Position {
    let (s, e) = (modifiers.contains(&Modifier::Startswith), modifiers.contains(&Modifier::Endswith));
    match (modifiers.contains(&Modifier::Contains) || (s && e), s, e) {
        (true, _, _) => Position::Anywhere,
        (_, true, _) => Position::Start,
        (_, _, true) => Position::End,
        _ => Position::Whole,
    }
}

/// Applies one modifier to every alternative of one value.
fn transform(values: Vec<SigmaStr>, m: Modifier, resolver: &dyn Resolver) -> Result<Vec<SigmaStr>, String> {
    let mut out = Vec::with_capacity(values.len());
    for s in values {
        match m {
            Modifier::Contains => out.push(s.wrap(true, true)),
            Modifier::Startswith => out.push(s.wrap(false, true)),
            Modifier::Endswith => out.push(s.wrap(true, false)),
            Modifier::Windash => out.push(s.windash()),
            Modifier::Base64 => {
                for c in s.expand_choices()? {
                    let plain = base64_of(&c, "base64")?;
                    out.push(SigmaStr::literal(base64::engine::general_purpose::STANDARD.encode(plain).into_bytes()));
                }
            }
            Modifier::Base64Offset => {
                for c in s.expand_choices()? {
                    out.extend(base64_offsets(&base64_of(&c, "base64offset")?).into_iter().map(SigmaStr::literal));
                }
            }
            Modifier::Utf16Le => out.push(s.map_literals(|b| utf16(b, false))?),
            Modifier::Utf16Be => out.push(s.map_literals(|b| utf16(b, true))?),
            Modifier::Utf16Bom => {
                let body = s.map_literals(|b| utf16(b, false))?;
                out.push(SigmaStr::literal(vec![0xFF, 0xFE]).concat(body));
            }
            Modifier::Expand => out.extend(expand(s.with_placeholders(), resolver)?),
            Modifier::All | Modifier::Cased | Modifier::Neq => out.push(s),
            other => return Err(format!("modifier {other:?} cannot be combined with a string value here")),
        }
        if out.len() > MAX_EXPANSION {
            return Err(format!("a value expands to more than {MAX_EXPANSION} values"));
        }
    }
    Ok(out)
}

/// Replaces each placeholder by each of its configured values (which may hold wildcards).
fn expand(s: SigmaStr, resolver: &dyn Resolver) -> Result<Vec<SigmaStr>, String> {
    let mut out = vec![SigmaStr::default()];
    for part in s.parts {
        match part {
            Part::Placeholder(name) => {
                let values = resolver
                    .placeholder(&name)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("placeholder %{name}% has no values (give them in [sigma.placeholders])"))?;
                if out.len() * values.len() > MAX_EXPANSION {
                    return Err(format!("placeholder %{name}% expands to more than {MAX_EXPANSION} values"));
                }
                out = out
                    .into_iter()
                    .flat_map(|prefix| values.iter().map(move |v| prefix.clone().concat(SigmaStr::parse(v))))
                    .collect();
            }
            other => {
                for s in &mut out {
                    s.push(other.clone());
                }
            }
        }
    }
    Ok(out)
}

/// `all`: every original value (any of its alternatives) must match.
fn compile_all(groups: Vec<Vec<SigmaStr>>, cased: bool, target: &Target, sets: &LiteralSets) -> Result<Check, String> {
    // The common case, `contains|all` of plain strings: which literals occur comes from the shared search.
    let literals: Option<Vec<Vec<u8>>> = groups
        .iter()
        .map(|g| match g.as_slice() {
            [s] => contains_literal(s).filter(|b| cased || b.is_ascii()),
            _ => None,
        })
        .collect();
    if let Some(lits) = literals.filter(|l| !l.is_empty() && l.iter().all(|b| !b.is_empty())) {
        return Ok(Check::AllLiterals(sets.register(target, cased, &lits)));
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        out.push(Arc::new(compile_any(g, cased, target, sets)?));
    }
    Ok(Check::AllText(out))
}

fn contains_literal(s: &SigmaStr) -> Option<Vec<u8>> {
    match s.parts.as_slice() {
        [Part::Star, Part::Lit(b), Part::Star] => Some(b.clone()),
        _ => None,
    }
}

/// Values linked by OR, each in the cheapest group that can test it.
fn compile_any(values: Vec<SigmaStr>, cased: bool, target: &Target, sets: &LiteralSets) -> Result<TextMatch, String> {
    let mut m = TextMatch::default();
    let (mut caseless, mut exact, mut patterns) = (Vec::new(), Vec::new(), Vec::new());
    for s in values {
        let foldable = |b: &[u8]| cased || b.is_ascii();
        match s.parts.as_slice() {
            [Part::Star] => m.prefix.push(Literal { bytes: Vec::new(), cased }),
            [Part::Lit(b)] if foldable(b) => m.whole.push(Literal { bytes: b.clone(), cased }),
            [Part::Lit(b), Part::Star] if foldable(b) => m.prefix.push(Literal { bytes: b.clone(), cased }),
            [Part::Star, Part::Lit(b)] if foldable(b) => m.suffix.push(Literal { bytes: b.clone(), cased }),
            [Part::Star, Part::Lit(b), Part::Star] if foldable(b) && !b.is_empty() => {
                if cased {
                    exact.push(b.clone())
                } else {
                    caseless.push(b.clone())
                }
            }
            _ => patterns.push(regex_of(&s, cased)),
        }
    }
    if !caseless.is_empty() {
        m.contains.push(sets.register(target, false, &caseless));
    }
    if !exact.is_empty() {
        m.contains.push(sets.register(target, true, &exact));
    }
    if !patterns.is_empty() {
        let joined = patterns.join("|");
        let re = regex::bytes::RegexBuilder::new(&joined)
            .size_limit(16 << 20)
            .build()
            .map_err(|e| format!("cannot compile the wildcard values: {e}"))?;
        m.regexes.push(re);
    }
    Ok(m)
}

/// A wildcard string as a regular expression group, anchored where it has no `*` at its ends.
fn regex_of(s: &SigmaStr, cased: bool) -> String {
    let mut parts: &[Part] = &s.parts;
    let anchored_start = !matches!(parts.first(), Some(Part::Star));
    let anchored_end = !matches!(parts.last(), Some(Part::Star));
    while let [Part::Star, rest @ ..] = parts {
        parts = rest;
    }
    while let [rest @ .., Part::Star] = parts {
        parts = rest;
    }
    let mut out = String::from(if cased { "(?:" } else { "(?i:" });
    if anchored_start {
        out.push_str(r"\A");
    }
    for p in parts {
        match p {
            Part::Lit(b) => out.push_str(&escape_bytes(b)),
            Part::Star => out.push_str("(?s-u:.)*"),
            Part::One => out.push_str("(?s:.)"),
            Part::Choice(alts) => {
                out.push_str("(?:");
                out.push_str(&alts.iter().map(|a| escape_bytes(a)).collect::<Vec<_>>().join("|"));
                out.push(')');
            }
            Part::Placeholder(name) => out.push_str(&regex::escape(&format!("%{name}%"))),
        }
    }
    if anchored_end {
        out.push_str(r"\z");
    }
    out.push(')');
    out
}

fn escape_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => regex::escape(s),
        Err(_) => b.iter().map(|x| format!(r"(?-u:\x{x:02X})")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_specification() {
        assert_eq!(SigmaStr::parse(r"C:\Windows").plain(), Some(br"C:\Windows".to_vec()));
        assert_eq!(SigmaStr::parse(r"a\*b").plain(), Some(b"a*b".to_vec()));
        assert_eq!(SigmaStr::parse(r"a\\*").parts, vec![Part::Lit(br"a\".to_vec()), Part::Star]);
        assert_eq!(SigmaStr::parse(r"a\\\*").plain(), Some(br"a\*".to_vec()));
        assert_eq!(SigmaStr::parse(r"\\\\").plain(), Some(br"\\".to_vec()));
        assert_eq!(SigmaStr::parse("a?c").parts, vec![Part::Lit(b"a".to_vec()), Part::One, Part::Lit(b"c".to_vec())]);
    }

    #[test]
    fn base64_offsets_match_pysigma() {
        // The same three forms pySigma computes for `/c` and `sekurlsa`.
        let forms: Vec<String> = base64_offsets(b"/c").into_iter().map(|b| String::from_utf8(b).unwrap()).collect();
        assert_eq!(forms, ["L2", "9j", "vY"]);
        let forms: Vec<String> =
            base64_offsets(b"sekurlsa").into_iter().map(|b| String::from_utf8(b).unwrap()).collect();
        assert_eq!(forms, ["c2VrdXJsc2", "Nla3VybHNh", "zZWt1cmxzY"]);
    }

    #[test]
    fn windash_marks_only_dashes_that_start_a_word() {
        let s = SigmaStr::parse("-param-name /x").windash();
        let expanded: Vec<Vec<u8>> = s.expand_choices().unwrap().into_iter().filter_map(|s| s.plain()).collect();
        assert_eq!(expanded.len(), 25);
        assert!(expanded.contains(&b"/param-name -x".to_vec()));
        assert!(expanded.contains(&"\u{2014}param-name \u{2013}x".as_bytes().to_vec()));
        assert!(!expanded.iter().any(|e| e.windows(6).any(|w| w == b"param/")));
    }
}
