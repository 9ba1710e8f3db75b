//! [`LinkConfig`]: the one home of every setting of linking and fact
//! retrieval, with defaults that fit graft's graphs; a JSON file given with
//! `--link-config` overrides any field.

use serde::Deserialize;

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const OWL: &str = "http://www.w3.org/2002/07/owl#";
const RDFS: &str = "http://www.w3.org/2000/01/rdf-schema#";
const SKOS: &str = "http://www.w3.org/2004/02/skos/core#";
const SCHEMA: &str = "https://schema.org/";
const GV: &str = "https://w3id.org/graft/vocab#";

/// How much a label predicate says about a node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// The node's name (`rdfs:label`, `skos:prefLabel`, `schema:name`, `foaf:name`).
    Preferred,
    /// Another name (`skos:altLabel`, `schema:alternateName`).
    Alternative,
    /// A name used for matching only, never shown (`skos:hiddenLabel`: tickers,
    /// codes). Hidden labels match only with the exact case of the graph.
    Hidden,
}

/// A predicate whose literal objects are labels.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelPredicate {
    pub iri: String,
    pub kind: LabelKind,
}

/// Nodes that have `predicate` with `object` (an IRI or a plain literal's
/// value) are never candidates (e.g. WordNet verbs).
#[derive(Debug, Clone, Deserialize)]
pub struct Exclusion {
    pub predicate: String,
    pub object: String,
}

/// Settings of linking and fact retrieval. Every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Predicates whose literals are labels, with their kind.
    pub label_predicates: Vec<LabelPredicate>,
    /// Nodes never linked.
    pub exclude: Vec<Exclusion>,
    /// Named graphs of lexical knowledge (dictionary words): a lower-case
    /// mention that is a word there links to nothing outside them.
    pub lexical_graphs: Vec<String>,
    /// Predicates whose objects say what a node is about (for context
    /// agreement between the entities of one text).
    pub context_predicates: Vec<String>,
    /// Types too common to tell anything (ignored for context agreement).
    pub generic_types: Vec<String>,
    /// Facts to retrieve, in order of preference (`rdf:type` first by default).
    pub fact_predicates: Vec<String>,
    /// Below this confidence a mention is NIL (not linked).
    pub min_confidence: f32,
    /// A label shared by more nodes than this is too ambiguous: the mention is NIL.
    pub max_candidates: usize,
    /// At most this many entities per text (the most confident first).
    pub max_entities: usize,
    /// Longer texts are refused, in Unicode scalar values (default 100,000).
    pub max_text_chars: usize,
    /// Facts per entity.
    pub max_facts_per_entity: usize,
    /// Facts per text.
    pub max_facts_per_text: usize,
    /// Words never taken as mentions (compared after normalisation).
    pub stop_words: Vec<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        let label = |iri: String, kind| LabelPredicate { iri, kind };
        Self {
            label_predicates: vec![
                label(format!("{RDFS}label"), LabelKind::Preferred),
                label(format!("{SKOS}prefLabel"), LabelKind::Preferred),
                label(format!("{SCHEMA}name"), LabelKind::Preferred),
                label(
                    "http://xmlns.com/foaf/0.1/name".into(),
                    LabelKind::Preferred,
                ),
                label(format!("{SKOS}altLabel"), LabelKind::Alternative),
                label(format!("{SCHEMA}alternateName"), LabelKind::Alternative),
                label(format!("{SKOS}hiddenLabel"), LabelKind::Hidden),
            ],
            // WordNet's verbs, adjectives and adverbs, the graphs' own
            // vocabulary (classes and properties: "industry" in a text is
            // not the property gv:industry), the nodes that describe a
            // vocabulary or graph as a whole (the concept scheme "HowNet
            // sentiment words" is not one of its words) and the values of the
            // sentiment lexicon's properties ("positive" is not gv:positive).
            exclude: ["verb", "adjective", "adverb"]
                .into_iter()
                .map(|pos| Exclusion {
                    predicate: format!("{GV}partOfSpeech"),
                    object: pos.into(),
                })
                .chain(
                    [
                        format!("{RDF}Property"),
                        format!("{RDFS}Class"),
                        format!("{OWL}Class"),
                        format!("{OWL}ObjectProperty"),
                        format!("{OWL}DatatypeProperty"),
                        format!("{OWL}AnnotationProperty"),
                        format!("{OWL}Ontology"),
                        format!("{SKOS}ConceptScheme"),
                        format!("{GV}Polarity"),
                        format!("{GV}ValenceShift"),
                    ]
                    .into_iter()
                    .map(|class| Exclusion {
                        predicate: RDF_TYPE.into(),
                        object: class,
                    }),
                )
                .collect(),
            lexical_graphs: vec!["https://w3id.org/graft/graph/wordnet".into()],
            context_predicates: vec![
                format!("{GV}industry"),
                format!("{GV}country"),
                format!("{SCHEMA}memberOf"),
                format!("{GV}lexicalDomain"),
                format!("{SKOS}broader"),
                format!("{GV}instanceOf"),
                format!("{GV}relatedIntent"),
                format!("{GV}headquarters"),
            ],
            generic_types: vec![
                format!("{SKOS}Concept"),
                format!("{GV}Synset"),
                "http://www.w3.org/2002/07/owl#Thing".into(),
            ],
            fact_predicates: vec![
                RDF_TYPE.into(),
                format!("{GV}industry"),
                format!("{GV}country"),
                format!("{SCHEMA}memberOf"),
                format!("{GV}tradedOn"),
                format!("{GV}headquarters"),
                format!("{GV}relatedIntent"),
                format!("{SKOS}broader"),
                format!("{GV}instanceOf"),
                format!("{GV}lexicalDomain"),
                format!("{GV}currency"),
                format!("{GV}capital"),
                format!("{GV}polarity"),
                format!("{GV}valenceShifter"),
            ],
            min_confidence: 0.5,
            max_candidates: 64,
            max_entities: 256,
            max_text_chars: 100_000,
            max_facts_per_entity: 5,
            max_facts_per_text: 20,
            stop_words: STOP_WORDS.iter().map(|w| (*w).to_owned()).collect(),
        }
    }
}

impl LinkConfig {
    /// Reads a JSON file; absent fields keep their defaults.
    ///
    /// # Errors
    /// A message naming the file and the problem.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// English function words and the commonest Chinese function words.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
    "you", "your", "yours", "also", "may", "might", "must", "shall", "one", "two", "new", "said",
    "says", "like", "get", "got", "make", "made", "many", "much", "well", "way", "even", "back",
    "的", "了", "是", "在", "和", "有", "我", "你", "他", "她", "它", "们", "这", "那", "就", "也",
    "都", "而", "及", "与", "或", "一个", "没有", "我们", "你们", "他们", "这个", "那个", "什么",
    "不是", "可以", "还是", "但是", "因为", "所以", "如果", "非常", "比较",
];
