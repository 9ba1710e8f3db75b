//! Entity linking on small graphs built in the test: normalisation, word
//! boundaries, the rules for short and common labels, NIL, bounded cost on
//! hostile input, and the index following the store's writes.

use graft::graph::{GraphStore, GraphTarget, RdfFormat};
use graft::link::{LinkConfig, LinkError, Linker};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GRAPH: &str = r#"
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
ex:apple_inc rdfs:label "Apple Inc."@en ; skos:altLabel "Apple"@en ; skos:hiddenLabel "AAPL" ; a ex:Company ; ex:country ex:us .
ex:us rdfs:label "United States"@en , "美国"@zh ; skos:altLabel "US" .
ex:bank rdfs:label "Deutsche Bank"@en , "德意志银行"@zh ; a ex:Company .
ex:byd rdfs:label "比亚迪"@zh ; a ex:Company .
ex:x rdfs:label "X"@en .
ex:the rdfs:label "The"@en .
ex:pine rdfs:label "pineapple"@en .
"#;

fn linker_over(turtle: &str) -> (tempfile::TempDir, Linker) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(GraphStore::open(dir.path()).unwrap());
    store
        .replace_graph(
            &GraphTarget::Named(graft::graph::parse_iri("http://example.org/g").unwrap()),
            RdfFormat::Turtle,
            None,
            turtle.as_bytes(),
        )
        .unwrap();
    let linker = Linker::new(store, LinkConfig::default(), &|_| {}).unwrap();
    (dir, linker)
}

fn spans(linker: &Linker, text: &str) -> Vec<(usize, usize, String)> {
    linker
        .link(text, None)
        .unwrap()
        .entities
        .into_iter()
        .map(|e| {
            (
                e.start,
                e.end,
                e.iri.trim_start_matches("http://example.org/").to_owned(),
            )
        })
        .collect()
}

#[test]
fn normalised_forms_meet_and_offsets_are_unicode_scalars() {
    let (_d, linker) = linker_over(GRAPH);
    assert_eq!(
        spans(&linker, "DEUTSCHE  BANK fell"),
        [(0, 14, "bank".to_owned())]
    );
    assert_eq!(
        spans(&linker, "ＤＥＵＴＳＣＨＥ　ＢＡＮＫ"),
        [(0, 13, "bank".to_owned())]
    );
    // Emoji and CJK before the mention count one scalar each.
    assert_eq!(
        spans(&linker, "😀😀 德意志银行和比亚迪"),
        [(3, 8, "bank".to_owned()), (9, 12, "byd".to_owned())]
    );
    let linked = linker.link("😀 Deutsche Bank", None).unwrap();
    assert_eq!(linked.entities[0].mention, "Deutsche Bank");
    assert_eq!(linked.entities[0].label, "Deutsche Bank");
    assert_eq!(linked.lang, "en");
    assert_eq!(
        linker.link("德意志银行", None).unwrap().entities[0].label,
        "德意志银行"
    );
}

#[test]
fn word_boundaries_in_spaced_scripts_only() {
    let (_d, linker) = linker_over(GRAPH);
    // "apple" inside "pineapples" is not a mention; "pineapple" alone is.
    assert!(spans(&linker, "pineapples").is_empty());
    assert_eq!(spans(&linker, "a pineapple."), [(2, 11, "pine".to_owned())]);
    assert!(spans(&linker, "Applesauce").is_empty());
    // Inside a run of Han characters a mention may start anywhere.
    assert_eq!(
        spans(&linker, "我买了比亚迪汽车"),
        [(3, 6, "byd".to_owned())]
    );
}

#[test]
fn short_hidden_one_letter_and_stop_word_labels() {
    let (_d, linker) = linker_over(GRAPH);
    // Short labels and tickers match only in the graph's case.
    assert_eq!(
        spans(&linker, "AAPL rose in the US"),
        [(0, 4, "apple_inc".to_owned()), (17, 19, "us".to_owned())]
    );
    assert!(spans(&linker, "aapl rose, tell us").is_empty());
    // One-letter labels and stop-words never match.
    assert!(spans(&linker, "X marks the spot. The end.").is_empty());
}

#[test]
fn empty_control_and_mixed_input() {
    let (_d, linker) = linker_over(GRAPH);
    assert!(spans(&linker, "").is_empty());
    assert!(spans(&linker, " \t\n ").is_empty());
    assert_eq!(
        spans(&linker, "\u{0}\u{7}Deutsche\u{1b}Bank\u{0}"),
        [(2, 15, "bank".to_owned())]
    );
    assert!(spans(&linker, "🙂🙃🙂 ∑∫√ \u{202e}").is_empty());
}

#[test]
fn too_long_text_is_refused() {
    let (_d, linker) = linker_over(GRAPH);
    let limit = linker.config().max_text_chars;
    let text = "a".repeat(limit + 1);
    assert!(matches!(
        linker.link(&text, None),
        Err(LinkError::TextTooLong { chars, limit: l }) if chars == limit + 1 && l == limit
    ));
}

#[test]
fn thousands_of_mentions_give_bounded_output_in_bounded_time() {
    let (_d, linker) = linker_over(GRAPH);
    let text = "Deutsche Bank and 比亚迪 and AAPL. ".repeat(3000);
    let start = Instant::now();
    let linked = linker.link(&text, None).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(linked.entities.len(), linker.config().max_entities);
}

#[test]
fn labels_of_one_character_and_ten_thousand_identical_labels() {
    let mut turtle = String::from("@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n");
    for i in 0..10_000 {
        turtle.push_str(&format!(
            "<http://example.org/n{i}> rdfs:label \"Springfield\"@en , \"s\"@en , \"中\"@zh .\n"
        ));
    }
    turtle.push_str("<http://example.org/unique> rdfs:label \"Shelbyville\"@en .\n");
    let (_d, linker) = linker_over(&turtle);
    let stats = linker.index().unwrap().stats();
    assert_eq!(stats.labels, 2, "one-character labels are not indexed");
    let start = Instant::now();
    let linked = linker
        .link(&"Springfield s 中 Shelbyville ".repeat(200), None)
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    // 10,000 nodes share "Springfield": too ambiguous, NIL; "Shelbyville" links.
    assert!(linked
        .entities
        .iter()
        .all(|e| e.iri == "http://example.org/unique"));
    assert_eq!(linked.entities.len(), 200);
}

#[test]
fn the_index_follows_writes_to_the_store() {
    let (_d, linker) = linker_over(GRAPH);
    assert!(spans(&linker, "Commerzbank rose").is_empty());
    let before = linker.index().unwrap().generation();
    linker
        .store()
        .add_to_graph(
            &GraphTarget::Default,
            RdfFormat::NTriples,
            None,
            b"<http://example.org/cbk> <http://www.w3.org/2000/01/rdf-schema#label> \"Commerzbank\"@en .\n",
        )
        .unwrap();
    assert_eq!(
        spans(&linker, "Commerzbank rose"),
        [(0, 11, "cbk".to_owned())]
    );
    assert_eq!(linker.link("x", None).unwrap().graph_generation, before + 1);
}

#[test]
fn context_agreement_moves_the_choice() {
    let turtle = r#"
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix gv: <https://w3id.org/graft/vocab#> .
ex:jaguar_car rdfs:label "Jaguar"@en ; gv:industry ex:automotive .
ex:jaguar_cat rdfs:label "Jaguar"@en ; gv:lexicalDomain ex:animal .
ex:ford rdfs:label "Ford Motor"@en ; gv:industry ex:automotive .
ex:puma rdfs:label "puma"@en ; gv:lexicalDomain ex:animal .
"#;
    let (_d, linker) = linker_over(turtle);
    let first = |text: &str| {
        spans(&linker, text)
            .into_iter()
            .find(|s| s.0 == 0)
            .map(|s| s.2)
    };
    assert_eq!(
        first("Jaguar and Ford Motor sales fell").as_deref(),
        Some("jaguar_car")
    );
    assert_eq!(
        first("Jaguar and puma are big cats").as_deref(),
        Some("jaguar_cat")
    );
    // Alone, the two senses tie: NIL.
    assert_eq!(first("Jaguar"), None);
}

#[test]
fn only_the_kept_spans_are_linked_with_offsets_in_the_whole_text() {
    let (_d, linker) = linker_over(GRAPH);
    // "😀 Deutsche Bank … Apple … 比亚迪": keep the start and the end, cut
    // the middle (where Apple is), as head+tail truncation does.
    let text = "😀 Deutsche Bank said that Apple and 比亚迪";
    let scalars: Vec<char> = text.chars().collect();
    let at = |needle: &str| {
        let byte = text.find(needle).unwrap();
        text[..byte].chars().count()
    };
    let head = 0..at(" said");
    let tail = at("比亚迪")..usize::MAX;
    let answer =
        graft::knowledge::link_spans(&linker, text, &[head, tail.clone()], None, None).unwrap();
    let found: Vec<(usize, usize, &str)> = answer
        .entities
        .iter()
        .map(|e| {
            (
                e.start,
                e.end,
                e.iri.trim_start_matches("http://example.org/"),
            )
        })
        .collect();
    assert_eq!(found, [(2, 15, "bank"), (tail.start, scalars.len(), "byd")]);
    // The tail is Chinese, so labels are in Chinese, as for the whole text.
    assert_eq!(answer.entities[0].label, "德意志银行");
    assert_eq!(
        linker.link(text, None).unwrap().entities[0].label,
        "德意志银行"
    );
    assert_eq!(scalars[tail.start..].iter().collect::<String>(), "比亚迪");
    // Facts only of the kept entities: Apple's country is not among them.
    assert!(answer
        .facts
        .iter()
        .all(|f| !f.subject.ends_with("apple_inc")));
    // The whole text links Apple too; an open span is the whole text.
    let open = 0..usize::MAX;
    let whole =
        graft::knowledge::link_spans(&linker, text, std::slice::from_ref(&open), None, None)
            .unwrap();
    assert!(whole.entities.iter().any(|e| e.iri.ends_with("apple_inc")));
    assert!(whole.facts.iter().any(|f| f.subject.ends_with("apple_inc")));
    // A cut through a mention: "Deutsche" alone is not linked.
    let deutsche = 0..at(" Bank");
    let cut =
        graft::knowledge::link_spans(&linker, text, std::slice::from_ref(&deutsche), None, None)
            .unwrap();
    assert!(cut.entities.is_empty(), "{:?}", cut.entities);
    // The linker's length limit holds for the text, however little is kept.
    let limit = linker.config().max_text_chars;
    let long = format!("Deutsche Bank {}", "a".repeat(limit));
    let head = 0..13;
    assert!(matches!(
        graft::knowledge::link_spans(&linker, &long, std::slice::from_ref(&head), None, None),
        Err(LinkError::TextTooLong { chars, limit: l }) if chars == limit + 14 && l == limit
    ));
    // An empty or reversed range links nothing and does not panic.
    #[allow(clippy::reversed_empty_ranges)] // on purpose: what a caller may pass
    let reversed = [5..2, 3..3];
    let none = graft::knowledge::link_spans(&linker, text, &reversed, None, None).unwrap();
    assert!(none.entities.is_empty() && none.facts.is_empty());
}
