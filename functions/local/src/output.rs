//! Printing API answers: aligned tables for people, the API's JSON for scripts.

use serde_json::Value;

use crate::client::Output;

/// A plain text table: a header row and aligned columns (two spaces apart), like `kubectl get`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// A JSON value as text: strings bare, null as `-`, arrays joined with `,`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints `value` as JSON, or as what `render` makes of it.
pub fn print(output: Output, value: &Value, render: impl FnOnce(&Value) -> String) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Output::Table => print!("{}", render(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = table(&["ID", "STATUS"], &[vec!["T-1".into(), "new".into()], vec!["T-1234".into(), "closed".into()]]);
        assert_eq!(t, "ID      STATUS\nT-1     new\nT-1234  closed\n");
        assert_eq!(cell(&serde_json::json!(["T1110", "T1078"])), "T1110,T1078");
        assert_eq!(cell(&Value::Null), "-");
    }
}
