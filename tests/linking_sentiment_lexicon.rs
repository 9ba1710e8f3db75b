//! Entity linking on the real Chinese sentiment lexicon graph (HowNet's
//! sentiment words, built by `scripts/graphs/sentiment_zh.py` into
//! `data/graphs/`, or the folder in `GRAFT_GRAPHS_DIR`): review sentences get
//! their evaluation words linked and put into words as polarity and
//! valence-shifter facts, which K-BERT injects.

mod common;
use graft::knowledge::link_text;
use graft::link::Linker;
use std::sync::OnceLock;

fn linker() -> &'static Linker {
    static LINKER: OnceLock<Linker> = OnceLock::new();
    LINKER.get_or_init(|| {
        common::linker_over(&[(
            common::graphs_dir().join("sentiment-zh.nt.gz"),
            "sentiment-zh",
        )])
    })
}

/// (mention, start, end) of each linked entity, in text order, and the facts' texts.
fn link(text: &str) -> (Vec<(String, usize, usize)>, Vec<String>) {
    let answer = link_text(linker(), text, None, None).unwrap();
    let mut entities: Vec<_> = answer
        .entities
        .into_iter()
        .map(|e| (e.mention, e.start, e.end))
        .collect();
    entities.sort_by_key(|e| e.1);
    (entities, answer.facts.into_iter().map(|f| f.text).collect())
}

#[test]
fn evaluation_words_get_their_polarity_in_chinese() {
    let (entities, facts) = link("房间不错，但是服务员态度冷淡，很失望。");
    assert_eq!(
        entities,
        vec![
            ("不错".to_owned(), 2, 4),
            ("冷淡".to_owned(), 12, 14),
            ("失望".to_owned(), 16, 18),
        ]
    );
    for fact in [
        "不错 — 极性 — 正面",
        "冷淡 — 极性 — 负面",
        "失望 — 极性 — 负面",
    ] {
        assert!(facts.iter().any(|f| f == fact), "{fact} not in {facts:?}");
    }
    assert_eq!(facts.len(), 3, "{facts:?}");
}

#[test]
fn degree_words_are_valence_shifters() {
    let (entities, facts) = link("有点失望");
    assert_eq!(
        entities,
        vec![("有点".to_owned(), 0, 2), ("失望".to_owned(), 2, 4)]
    );
    assert!(
        facts.iter().any(|f| f == "有点 — 情感修饰 — 程度减弱"),
        "{facts:?}"
    );
    assert!(facts.iter().any(|f| f == "失望 — 极性 — 负面"), "{facts:?}");
}

#[test]
fn one_character_words_and_words_of_both_lists_are_not_linked() {
    // 好 and 差 are in the lists but one character long: never indexed.
    // 克制 is listed both as positive and as negative: the graph leaves it out.
    let (entities, facts) = link("好，差，克制");
    assert!(entities.is_empty(), "{entities:?}");
    assert!(facts.is_empty(), "{facts:?}");
    // English text: the graph's words have Chinese labels only (its
    // vocabulary terms have English ones too, none of them in this text).
    let (entities, _) = link("The room was great and the staff were friendly");
    assert!(entities.is_empty(), "{entities:?}");
    // The graph's own vocabulary (极性 'polarity' is gv:polarity's label) is
    // not an entity.
    let (entities, facts) = link("极性");
    assert!(
        entities.is_empty() && facts.is_empty(),
        "{entities:?} {facts:?}"
    );
}

#[test]
fn polarity_and_shifter_values_are_not_entities() {
    // 正面 and 负面 are the labels of the values gv:positive and gv:negative
    // and also HowNet words of their own: a mention links to the word.
    let answer = link_text(linker(), "评价很正面，结论却负面", None, None).unwrap();
    let iris: Vec<&str> = answer.entities.iter().map(|e| e.iri.as_str()).collect();
    assert_eq!(iris.len(), 2, "{iris:?}");
    assert!(
        iris.iter()
            .all(|iri| iri.starts_with("https://w3id.org/graft/lexicon/zh/")),
        "{iris:?}"
    );
    // The values' own labels in English are not mentions.
    let (entities, facts) =
        link("The feedback was positive, the test negative: an intensifier or a negator");
    assert!(
        entities.is_empty() && facts.is_empty(),
        "{entities:?} {facts:?}"
    );
    // In Chinese, words inside the values' labels (否定 in 否定词) may be
    // HowNet words; the values themselves never link.
    let answer = link_text(linker(), "否定词，程度加强，程度减弱，极性值", None, None).unwrap();
    assert!(
        answer
            .entities
            .iter()
            .all(|e| !e.iri.starts_with("https://w3id.org/graft/vocab#")),
        "{:?}",
        answer.entities.iter().map(|e| &e.iri).collect::<Vec<_>>()
    );
}

#[test]
fn the_lexicon_itself_is_not_an_entity() {
    // The graph's concept scheme (skos:ConceptScheme "HowNet sentiment
    // words", "HowNet 情感词") describes the lexicon; a text that names it
    // is not about a word of it.
    for text in [
        "Built on the HowNet sentiment words",
        "基于HowNet 情感词的分析",
    ] {
        let answer = link_text(linker(), text, None, None).unwrap();
        assert!(
            answer
                .entities
                .iter()
                .all(|e| e.iri != "https://w3id.org/graft/lexicon/zh/"),
            "{text}: {:?}",
            answer.entities.iter().map(|e| &e.iri).collect::<Vec<_>>()
        );
    }
}
