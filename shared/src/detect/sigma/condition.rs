//! The `condition` of a Sigma detection: `and`, `or`, `not`, parentheses, `1 of` / `all of` a pattern
//! (`selection_*`) or `them`, with the specification's precedence (or < and < not < x of < parentheses).
//! Aggregation pipes (`| count() by x > 5`), Sigma 1's correlation syntax, are rejected with a pointer to
//! correlation rules.

use super::predicate::Node;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Ident(String),
    /// `1 of X` (`all == false`) or `all of X`; `None` is `them`.
    Of {
        all: bool,
        pattern: Option<String>,
    },
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    if text.contains('|') {
        return Err("the condition uses an aggregation pipe (`| count() ...`), Sigma 1's deprecated correlation \
                    syntax: write a correlation rule (event_count, value_count, ...) instead"
            .to_string());
    }
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !word.is_empty() {
                tokens.push(Token::Word(std::mem::take(&mut word)));
            }
            match c {
                '(' => tokens.push(Token::Open),
                ')' => tokens.push(Token::Close),
                _ => {}
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.not()?];
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.tokens.get(self.pos).cloned() {
            None => Err("the condition ends where an expression was expected".to_string()),
            Some(Token::Close) => Err("unexpected `)` in the condition".to_string()),
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err("a `(` in the condition is not closed".to_string()),
                }
            }
            Some(Token::Word(w)) => {
                self.pos += 1;
                let lower = w.to_ascii_lowercase();
                let next_is_of = self.peek_word().as_deref() == Some("of");
                if next_is_of {
                    self.pos += 1;
                    let all = match lower.as_str() {
                        "1" => false,
                        "all" => true,
                        other => {
                            return Err(format!("`{other} of` is not Sigma (only `1 of` and `all of` are)"));
                        }
                    };
                    let pattern = match self.tokens.get(self.pos) {
                        Some(Token::Word(p)) => p.clone(),
                        _ => return Err("`of` must be followed by a search-identifier pattern or `them`".to_string()),
                    };
                    self.pos += 1;
                    let pattern = (!pattern.eq_ignore_ascii_case("them")).then_some(pattern);
                    return Ok(Expr::Of { all, pattern });
                }
                match lower.as_str() {
                    "and" | "or" | "not" | "of" | "them" => Err(format!("unexpected `{w}` in the condition")),
                    "near" => {
                        Err("`near` is Sigma 1's deprecated temporal syntax: write a temporal correlation rule"
                            .to_string())
                    }
                    _ => Ok(Expr::Ident(w)),
                }
            }
        }
    }
}

pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("the condition is empty".to_string());
    }
    let mut p = Parser { tokens, pos: 0 };
    let expr = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected {:?} after a complete condition", p.tokens[p.pos]));
    }
    Ok(expr)
}

/// `*` matches any run of characters (the only wildcard conditions have).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|&i| rest.is_char_boundary(i)).any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// Builds the condition's node from the compiled search identifiers (in the order the rule gives them).
pub(crate) fn resolve(expr: &Expr, identifiers: &[(String, Node)]) -> Result<Node, String> {
    Ok(match expr {
        Expr::Or(parts) => Node::Any(parts.iter().map(|p| resolve(p, identifiers)).collect::<Result<_, _>>()?),
        Expr::And(parts) => Node::All(parts.iter().map(|p| resolve(p, identifiers)).collect::<Result<_, _>>()?),
        Expr::Not(inner) => Node::Not(Box::new(resolve(inner, identifiers)?)),
        Expr::Ident(name) => identifiers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, node)| node.clone())
            .ok_or_else(|| format!("the condition names `{name}`, which the detection does not define"))?,
        Expr::Of { all, pattern } => {
            let chosen: Vec<Node> = identifiers
                .iter()
                .filter(|(n, _)| match pattern {
                    None => !n.starts_with('_'),
                    Some(p) => glob(p, n),
                })
                .map(|(_, node)| node.clone())
                .collect();
            if chosen.is_empty() {
                return Err(match pattern {
                    Some(p) => format!("`{p}` in the condition matches no search identifier"),
                    None => "`them` in the condition matches no search identifier".to_string(),
                });
            }
            if *all {
                Node::All(chosen)
            } else {
                Node::Any(chosen)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(s: &str) -> Expr {
        Expr::Ident(s.to_string())
    }

    #[test]
    fn precedence_is_or_and_not_of() {
        assert_eq!(
            parse("a or b and not c").unwrap(),
            Expr::Or(vec![ident("a"), Expr::And(vec![ident("b"), Expr::Not(Box::new(ident("c")))])])
        );
        assert_eq!(
            parse("(a or b) and not 1 of filter_*").unwrap(),
            Expr::And(vec![
                Expr::Or(vec![ident("a"), ident("b")]),
                Expr::Not(Box::new(Expr::Of { all: false, pattern: Some("filter_*".into()) })),
            ])
        );
        assert_eq!(parse("all of them").unwrap(), Expr::Of { all: true, pattern: None });
        assert_eq!(parse("NOT a AND b").unwrap(), Expr::And(vec![Expr::Not(Box::new(ident("a"))), ident("b")]));
    }

    #[test]
    fn malformed_conditions_say_what_is_wrong() {
        assert!(parse("selection | count() by src > 5").unwrap_err().contains("correlation rule"));
        assert!(parse("a and (b or c").unwrap_err().contains("not closed"));
        assert!(parse("2 of sel*").unwrap_err().contains("only `1 of` and `all of`"));
        assert!(parse("a b").unwrap_err().contains("after a complete condition"));
        assert!(parse("a and").unwrap_err().contains("ends where"));
        assert!(parse("a near b").is_err());
    }

    #[test]
    fn patterns_glob_and_them_skips_underscores() {
        assert!(glob("selection_*", "selection_img"));
        assert!(glob("*_main_*", "filter_main_status"));
        assert!(!glob("sel*", "filter"));
        let ids = vec![
            ("sel_a".to_string(), Node::Const(true)),
            ("_hidden".to_string(), Node::Const(false)),
            ("sel_b".to_string(), Node::Const(true)),
        ];
        let all = resolve(&parse("all of them").unwrap(), &ids).unwrap();
        assert!(matches!(all, Node::All(ref n) if n.len() == 2));
        assert!(resolve(&parse("1 of x*").unwrap(), &ids).unwrap_err().contains("matches no search identifier"));
        assert!(resolve(&parse("missing").unwrap(), &ids).unwrap_err().contains("does not define"));
    }
}
