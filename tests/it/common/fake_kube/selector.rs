//! Label selectors as the API server reads the `labelSelector` query
//! parameter: equality (`a=b`, `a==b`, `a!=b`), set-based (`a in (x,y)`,
//! `a notin (x)`, `a`, `!a`) and numeric (`a>1`, `a<1`), ANDed by commas.
//! A selector the real server would refuse is refused here too, so a client
//! that builds a malformed one finds out in tests rather than in a cluster.

use std::collections::BTreeMap;

/// One parsed selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(pub Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    DoesNotExist(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Selector {
    /// Parse the selector text; the error is the message the 400 carries.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let tokens = lex(text);
        Parser { tokens, at: 0 }.selector()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        use Requirement::*;
        let number = |k: &str| labels.get(k).and_then(|v| v.parse::<i64>().ok());
        match self {
            Exists(k) => labels.contains_key(k),
            DoesNotExist(k) => !labels.contains_key(k),
            Equals(k, v) => labels.get(k) == Some(v),
            // As in Kubernetes: a label that is absent is "not equal".
            NotEquals(k, v) => labels.get(k) != Some(v),
            In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            GreaterThan(k, n) => number(k).is_some_and(|l| l > *n),
            LessThan(k, n) => number(k).is_some_and(|l| l < *n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Token::Word(w) => w,
            Token::Bang => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
        };
        f.write_str(s)
    }
}

/// A token as the error message shows it; the end of input shows as "".
fn shown(token: Option<&Token>) -> String {
    token.map(Token::to_string).unwrap_or_default()
}

fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '!' if chars.next_if_eq(&'=').is_some() => Token::NotEq,
            '!' => Token::Bang,
            '=' if chars.next_if_eq(&'=').is_some() => Token::DoubleEq,
            '=' => Token::Eq,
            '>' => Token::Gt,
            '<' => Token::Lt,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "!=<>(),".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                Token::Word(word)
            }
        };
        tokens.push(token);
    }
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn selector(mut self) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(Selector(requirements));
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => return Ok(Selector(requirements)),
                Some(Token::Comma) => {}
                Some(t) => return Err(format!("found '{t}', expected: ',' or end of string")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek() == Some(&Token::Bang) {
            self.next();
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        let op = match self.peek() {
            None | Some(Token::Comma) => return Ok(Requirement::Exists(key)),
            _ => self.next().expect("peeked"),
        };
        match op {
            Token::Eq | Token::DoubleEq => Ok(Requirement::Equals(key, self.value()?)),
            Token::NotEq => Ok(Requirement::NotEquals(key, self.value()?)),
            Token::Gt | Token::Lt => {
                // An integer, not a label value: `-1` is fine here.
                let raw = match self.next() {
                    Some(Token::Word(w)) => w,
                    t => return Err(format!("found '{}', expected: integer", shown(t.as_ref()))),
                };
                let n: i64 = raw.parse().map_err(|_| {
                    format!("for 'Gt', 'Lt' operators, the value must be an integer, got {raw:?}")
                })?;
                Ok(if op == Token::Gt {
                    Requirement::GreaterThan(key, n)
                } else {
                    Requirement::LessThan(key, n)
                })
            }
            Token::Word(w) if w == "in" => Ok(Requirement::In(key, self.set()?)),
            Token::Word(w) if w == "notin" => Ok(Requirement::NotIn(key, self.set()?)),
            t => Err(format!(
                "found '{t}', expected: in, notin, =, ==, !=, gt, lt"
            )),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => valid_key(&w).map(|()| w),
            t => Err(format!(
                "found '{}', expected: identifier",
                shown(t.as_ref())
            )),
        }
    }

    /// A value may be empty (`a=` selects labels set to ""), as in Kubernetes.
    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) | Some(Token::Close) => Ok(String::new()),
            Some(Token::Word(_)) => match self.next() {
                Some(Token::Word(w)) => valid_value(&w).map(|()| w),
                _ => unreachable!("peeked a word"),
            },
            Some(t) => Err(format!("found '{t}', expected: identifier")),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Some(Token::Open) {
            return Err("found no '(', expected: '(' after in/notin".into());
        }
        let mut values = Vec::new();
        loop {
            if self.peek() == Some(&Token::Close) && values.is_empty() {
                return Err("for 'in', 'notin' operators, values set can't be empty".into());
            }
            values.push(self.value()?);
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::Close) => return Ok(values),
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or ')'",
                        shown(t.as_ref())
                    ));
                }
            }
        }
    }
}

/// A qualified name: an optional DNS-subdomain prefix and `/`, then a name
/// of at most 63 characters.
fn valid_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !label_text(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn valid_value(value: &str) -> Result<(), String> {
    if value.is_empty() || label_text(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn label_text(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.len() <= 63
        && s.chars().all(|c| alnum(c) || "-_.".contains(c))
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}
