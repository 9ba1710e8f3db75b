//! Entity linking on the real finance, WordNet and customer-service graphs
//! (built by `scripts/build-graphs.sh` into `data/graphs/`, or the folder in
//! `GRAFT_GRAPHS_DIR`): English news with companies by name and ticker,
//! Chinese sentences with CSI 300 members and service concepts, and
//! ambiguous mentions that context resolves.

mod common;
use graft::knowledge::link_text;
use graft::link::Linker;
use std::path::PathBuf;
use std::sync::OnceLock;

const NS: &str = "https://w3id.org/graft/";

fn linker() -> &'static Linker {
    static LINKER: OnceLock<Linker> = OnceLock::new();
    LINKER.get_or_init(|| {
        let graphs = common::graphs_dir();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        common::linker_over(&[
            (graphs.join("finance.nt.gz"), "finance"),
            (graphs.join("wordnet.nt.gz"), "wordnet"),
            (root.join("graphs/customer-service.ttl"), "customer-service"),
        ])
    })
}

/// (start, end, IRI without the namespace) of each linked entity.
fn links(text: &str) -> Vec<(usize, usize, String)> {
    linker()
        .link(text, None)
        .unwrap()
        .entities
        .into_iter()
        .map(|e| (e.start, e.end, e.iri.trim_start_matches(NS).to_owned()))
        .collect()
}

fn link_of(text: &str, mention: &str) -> Option<String> {
    let start = text.find(mention).map(|b| text[..b].chars().count())?;
    links(text).into_iter().find(|l| l.0 == start).map(|l| l.2)
}

#[test]
fn companies_by_name_and_by_ticker() {
    let text = "Apple shares fell while Deutsche Bank rose; AAPL lost 2% and MSFT gained.";
    let got = links(text);
    assert!(
        got.contains(&(0, 5, "company/US0378331005".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(24, 37, "company/DE0005140008".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(44, 48, "company/US0378331005".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(61, 65, "company/US5949181045".into())),
        "{got:?}"
    );
}

#[test]
fn chinese_names_of_csi_300_members_and_service_concepts() {
    let got = links("宁德时代股价上涨，贵州茅台下跌。");
    assert_eq!(
        got,
        [
            (0, 4, "company/cn-300750".to_owned()),
            (9, 13, "company/cn-600519".to_owned())
        ]
    );
    let got = links("我要退款，订单还没有发货");
    assert!(got.contains(&(2, 4, "cs/refund".into())), "{got:?}");
    assert!(got.contains(&(5, 7, "cs/order".into())), "{got:?}");
    let linked = linker().link("宁德时代股价上涨", None).unwrap();
    assert_eq!(linked.lang, "zh");
    assert_eq!(linked.entities[0].label, "宁德时代");
}

#[test]
fn context_moves_the_choice_between_senses() {
    // "Apple" as written is the company's name; "apple" the fruit's (or NIL), never the company.
    assert_eq!(
        link_of("Apple shares fell", "Apple").as_deref(),
        Some("company/US0378331005")
    );
    let apple = link_of("an apple a day keeps the doctor away", "apple");
    assert!(
        apple.is_none() || apple.as_deref() == Some("wordnet/synset/07739125-n"),
        "{apple:?}"
    );
    // "Amazon": another company in the text picks the company; an ocean picks the river.
    assert_eq!(
        link_of("Amazon and Microsoft shares rose", "Amazon").as_deref(),
        Some("company/US0231351067")
    );
    assert_eq!(
        link_of("The Amazon flows into the Atlantic Ocean", "Amazon").as_deref(),
        Some("wordnet/synset/09195372-n")
    );
}

#[test]
fn facts_are_ranked_bounded_and_put_into_words() {
    let linker = linker();
    let config = linker.config();
    let answer = link_text(linker, "Deutsche Bank and BMW reported results", None, None).unwrap();
    let facts = &answer.facts;
    assert!(!facts.is_empty());
    assert!(facts.len() <= config.max_facts_per_text);
    for entity in &answer.entities {
        let n = facts.iter().filter(|f| f.subject == entity.iri).count();
        assert!(n <= config.max_facts_per_entity, "{n}");
    }
    assert!(
        facts
            .iter()
            .any(|f| f.text == "Deutsche Bank — industry — Financial services"),
        "{facts:#?}"
    );
    // Labels in the text's language: a Chinese text gets 中国 for the country.
    let facts = link_text(linker, "宁德时代股价上涨", None, None)
        .unwrap()
        .facts;
    assert!(
        facts.iter().any(|f| f.text == "宁德时代 — 国家 — 中国"),
        "{facts:#?}"
    );
    // max_facts bounds the total.
    assert_eq!(
        link_text(linker, "宁德时代股价上涨", None, Some(2))
            .unwrap()
            .facts
            .len(),
        2
    );
}

#[test]
fn common_words_do_not_swamp_the_output() {
    let text = "What is the best time of the day to buy a new set of tools and run a test?";
    let got = links(text);
    assert!(got.len() <= 2, "{got:?}");
}

#[test]
fn the_graphs_own_classes_and_properties_are_not_entities() {
    // The finance graph labels gv:industry "industry"/"行业", gv:country
    // "country"/"国家" and the class gv:StockIndex "stock index": schema,
    // not things a text talks about.
    for text in [
        "The industry and the country are growing, and the stock index fell",
        "这个行业和国家都在增长",
    ] {
        let linked = links(text);
        assert!(
            linked
                .iter()
                .all(|(_, _, iri)| !iri.starts_with("vocab#")
                    && !iri.starts_with("https://schema.org/")),
            "{text}: {linked:?}"
        );
    }
}
