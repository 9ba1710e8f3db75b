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

/// Where `text` first goes deeper than `limit`, if it does. Scans bytes
/// (every delimiter is ASCII); columns count Unicode scalars.
fn too_deep(text: &str, syntax: Syntax, limit: usize) -> Option<TextPosition> {
    if syntax == Syntax::Other {
        return None;
    }
    let b = text.as_bytes();
    let sparql = syntax == Syntax::Sparql;
    let (mut depth, mut line, mut column) = (0usize, 1u64, 0u64);
    let mut i = 0usize;
    // Moves past byte `i`, keeping line and column.
    let step = |i: &mut usize, line: &mut u64, column: &mut u64| {
        match b[*i] {
            b'\n' => {
                *line += 1;
                *column = 0;
            }
            c if c & 0xC0 != 0x80 => *column += 1,
            _ => {}
        }
        *i += 1;
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'(' | b'{' | b'[' => {
                step(&mut i, &mut line, &mut column);
                depth += 1;
                if depth > limit {
                    return Some(TextPosition { line, column });
                }
            }
            b')' | b'}' | b']' => {
                depth = depth.saturating_sub(1);
                step(&mut i, &mut line, &mut column);
            }
            // An escape outside strings (`ex:a\'` in a prefixed name) hides nothing.
            b'\\' if sparql => {
                step(&mut i, &mut line, &mut column);
                if i < b.len() && !matches!(b[i], b'(' | b'{' | b'[' | b')' | b'}' | b']') {
                    step(&mut i, &mut line, &mut column);
                }
            }
            b'"' | b'\'' if c == b'"' || sparql => {
                let long = b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c);
                let quote_len = if long { 3 } else { 1 };
                for _ in 0..quote_len {
                    step(&mut i, &mut line, &mut column);
                }
                // To the closing quote(s), honouring backslash escapes.
                while i < b.len() {
                    if b[i] == b'\\' {
                        step(&mut i, &mut line, &mut column);
                        if i < b.len() {
                            step(&mut i, &mut line, &mut column);
                        }
                        continue;
                    }
                    let closes = b[i] == c
                        && (!long || (b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c)));
                    if closes {
                        for _ in 0..quote_len {
                            step(&mut i, &mut line, &mut column);
                        }
                        break;
                    }
                    step(&mut i, &mut line, &mut column);
                }
            }
            b'#' if sparql => {
                while i < b.len() && b[i] != b'\n' {
                    step(&mut i, &mut line, &mut column);
                }
            }
            b'<' if sparql => {
                // An IRI (to `>` without whitespace) may hold `#` and quotes,
                // which must not start a comment or a string there; its
                // brackets still count, so `1<(((…)))>0` hides nothing.
                step(&mut i, &mut line, &mut column);
                let end = b[i..]
                    .iter()
                    .position(|&d| d == b'>' || d.is_ascii_whitespace() || d == b'<');
                if let Some(n) = end.filter(|&n| b[i + n] == b'>') {
                    let stop = i + n + 1;
                    while i < stop {
                        if matches!(b[i], b'(' | b'{' | b'[') {
                            depth += 1;
                            if depth > limit {
                                step(&mut i, &mut line, &mut column);
                                return Some(TextPosition { line, column });
                            }
                        } else if matches!(b[i], b')' | b'}' | b']') {
                            depth = depth.saturating_sub(1);
                        }
                        step(&mut i, &mut line, &mut column);
                    }
                }
            }
            _ => step(&mut i, &mut line, &mut column),
        }
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
    fn deep_nesting_is_found_and_brackets_in_strings_and_comments_are_not() {
        let deep = format!("ASK {}{}", "{".repeat(300), "}".repeat(300));
        let at = too_deep(&deep, Syntax::Sparql, 256).unwrap();
        assert_eq!((at.line, at.column), (1, 4 + 257));
        assert!(check_sparql(&deep).is_err());
        let fine = format!("ASK {}{}", "{".repeat(200), "}".repeat(200));
        assert!(check_sparql(&fine).is_ok());
        let hidden = format!(
            "SELECT * WHERE {{ ?s ?p \"{0}\" . ?s ?p '''{0}''' . ?s ?p <http://x/#'\"> # {0}\n FILTER(?o < 3) }}",
            "(".repeat(400)
        );
        assert_eq!(too_deep(&hidden, Syntax::Sparql, 2), None, "{hidden}");
        let escaped = r#"ASK { ?s ?p "a\"((((" }"#;
        assert_eq!(too_deep(escaped, Syntax::Sparql, 2), None);
        let json = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        assert!(check_document(json.as_bytes(), Syntax::Json).is_err());
        let json_string = format!("{{\"@id\": \"{}\"}}", "[".repeat(300));
        assert!(check_document(json_string.as_bytes(), Syntax::Json).is_ok());
        // Escapes in prefixed names and `<` as an operator hide nothing.
        let escaped_name = format!(
            "PREFIX ex: <http://x/> ASK {{ ?s ex:a\\' ?o FILTER({}1{}) }}",
            "(".repeat(300),
            ")".repeat(300)
        );
        assert!(too_deep(&escaped_name, Syntax::Sparql, 256).is_some());
        let hash_name = format!(
            "ASK {{ ?s ex:a\\#b ?o FILTER({}1{}) }}",
            "(".repeat(300),
            ")".repeat(300)
        );
        assert!(too_deep(&hash_name, Syntax::Sparql, 256).is_some());
        let less_than = format!(
            "ASK {{ FILTER(1<{}1{}>0) }}",
            "(".repeat(300),
            ")".repeat(300)
        );
        assert!(too_deep(&less_than, Syntax::Sparql, 256).is_some());
        let iri_hash = format!("ASK {{ <http://x#{}> ?p ?o }}", "(".repeat(300));
        assert!(too_deep(&iri_hash, Syntax::Sparql, 256).is_some());
        // Columns count characters, not bytes.
        let at = too_deep("ASK { \"é\" {{", Syntax::Sparql, 2).unwrap();
        assert_eq!(
            (at.line, at.column),
            (1, 12),
            "the third bracket, counted in characters"
        );
        let turtle = format!("<s> <p> {} .", "[ <p> ".repeat(300));
        let at = too_deep(&turtle, Syntax::Sparql, 256).unwrap();
        assert_eq!(at.line, 1);
        assert!(check_document(turtle.as_bytes(), Syntax::Other).is_ok());
    }
}
