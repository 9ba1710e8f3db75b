//! A guard against documents nested so deeply that a recursive-descent
//! parser overflows its thread's stack (which aborts the whole process: a
//! 2.4 KB SPARQL query of 1,200 nested groups did). Before a query, an
//! update or an RDF request body is parsed, its bracket depth is measured
//! with a linear scan and anything deeper than [`MAX_NESTING`] is refused
//! with a syntax error naming the line and column.

use super::error::{GraphError, TextPosition};

/// Deepest nesting of `(`, `{` and `[` accepted. Real queries and documents
/// stay far below (a query nested 30 deep is already unusual); the parsers
/// handle this depth on a 2 MiB thread stack with room to spare.
pub const MAX_NESTING: usize = 256;

/// The lexical rules of the text being scanned: what is a string, a
/// comment or an IRI (brackets inside those do not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// SPARQL, Turtle, TriG, N-Triples, N-Quads: `"…"`, `'…'` and their
    /// long forms, `#` comments, `<IRI>`.
    Sparql,
    /// JSON (JSON-LD): `"…"` only.
    Json,
    /// Anything else (RDF/XML is parsed by a streaming XML reader): no check.
    Other,
}

/// Where `text` first goes deeper than `limit`, if it does.
fn too_deep(text: &str, syntax: Syntax, limit: usize) -> Option<TextPosition> {
    if syntax == Syntax::Other {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut depth, mut line, mut column, mut i) = (0usize, 1u64, 0u64, 0usize);
    let advance = |c: char, line: &mut u64, column: &mut u64| {
        if c == '\n' {
            *line += 1;
            *column = 0;
        } else {
            *column += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        advance(c, &mut line, &mut column);
        match c {
            '(' | '{' | '[' => {
                depth += 1;
                if depth > limit {
                    return Some(TextPosition { line, column });
                }
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            '"' | '\'' if c == '"' || syntax == Syntax::Sparql => {
                let long = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                let quote_len = if long { 3 } else { 1 };
                for k in 1..quote_len {
                    advance(chars[i + k], &mut line, &mut column);
                }
                i += quote_len;
                // Skip to the closing quote(s), honouring backslash escapes.
                while i < chars.len() {
                    let d = chars[i];
                    if d == '\\' {
                        advance(d, &mut line, &mut column);
                        i += 1;
                        if let Some(&e) = chars.get(i) {
                            advance(e, &mut line, &mut column);
                        }
                        i += 1;
                        continue;
                    }
                    let closes = d == c
                        && (!long
                            || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)));
                    if closes {
                        for k in 0..quote_len {
                            advance(chars[i + k], &mut line, &mut column);
                        }
                        i += quote_len;
                        break;
                    }
                    advance(d, &mut line, &mut column);
                    i += 1;
                }
                continue;
            }
            '#' if syntax == Syntax::Sparql => {
                while i + 1 < chars.len() && chars[i + 1] != '\n' {
                    i += 1;
                    advance(chars[i], &mut line, &mut column);
                }
            }
            '<' if syntax == Syntax::Sparql => {
                // An IRI runs to `>` without whitespace; otherwise `<` is an operator.
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == '>' || d.is_whitespace() || d == '<');
                if let Some(n) = end {
                    if chars[i + 1 + n] == '>' {
                        for &d in &chars[i + 1..=i + 1 + n] {
                            advance(d, &mut line, &mut column);
                        }
                        i += n + 2;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Refuses a SPARQL query or update nested deeper than [`MAX_NESTING`].
///
/// # Errors
/// [`GraphError::SparqlSyntax`] with the position of the first bracket too deep.
pub fn check_sparql(text: &str) -> Result<(), GraphError> {
    match too_deep(text, Syntax::Sparql, MAX_NESTING) {
        None => Ok(()),
        Some(position) => Err(GraphError::SparqlSyntax {
            message: format!("nested more than {MAX_NESTING} levels deep"),
            position: Some(position),
        }),
    }
}

/// Refuses an RDF document nested deeper than [`MAX_NESTING`] (Turtle
/// family and JSON-LD; invalid UTF-8 is left to the parser).
///
/// # Errors
/// [`GraphError::RdfSyntax`] with the position of the first bracket too deep.
pub fn check_document(body: &[u8], syntax: Syntax) -> Result<(), GraphError> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Ok(());
    };
    match too_deep(text, syntax, MAX_NESTING) {
        None => Ok(()),
        Some(position) => Err(GraphError::RdfSyntax {
            message: format!("nested more than {MAX_NESTING} levels deep"),
            position: Some(position),
            source_name: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_found_and_brackets_in_strings_iris_and_comments_are_not() {
        let deep = format!("ASK {}{}", "{".repeat(300), "}".repeat(300));
        let at = too_deep(&deep, Syntax::Sparql, 256).unwrap();
        assert_eq!((at.line, at.column), (1, 4 + 257));
        assert!(check_sparql(&deep).is_err());
        let fine = format!("ASK {}{}", "{".repeat(200), "}".repeat(200));
        assert!(check_sparql(&fine).is_ok());
        let hidden = format!(
            "SELECT * WHERE {{ ?s ?p \"{0}\" . ?s ?p '''{0}''' . ?s ?p <http://x/{0}> # {0}\n FILTER(?o < 3) }}",
            "(".repeat(400)
        );
        assert_eq!(too_deep(&hidden, Syntax::Sparql, 2), None, "{hidden}");
        let escaped = r#"ASK { ?s ?p "a\"((((" }"#;
        assert_eq!(too_deep(escaped, Syntax::Sparql, 2), None);
        let json = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        assert!(check_document(json.as_bytes(), Syntax::Json).is_err());
        let json_string = format!("{{\"@id\": \"{}\"}}", "[".repeat(300));
        assert!(check_document(json_string.as_bytes(), Syntax::Json).is_ok());
        let turtle = format!("<s> <p> {} .", "[ <p> ".repeat(300));
        let at = too_deep(&turtle, Syntax::Sparql, 256).unwrap();
        assert_eq!(at.line, 1);
        assert!(check_document(turtle.as_bytes(), Syntax::Other).is_ok());
    }
}
