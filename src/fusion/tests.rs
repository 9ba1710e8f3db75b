//! Sentence trees built token by token on the tiny test tokenizer
//! (`tests/data/encoder/tiny/bert-bin/tokenizer.json`, a lower-casing
//! WordPiece with whole words such as "dog", "park", "ball").

use super::*;
use crate::encoder::TextTokenizer;

fn tokenizer() -> TextTokenizer {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/encoder/tiny/bert-bin/tokenizer.json");
    TextTokenizer::from_file(&path, 64).unwrap()
}

fn id(t: &TextTokenizer, token: &str) -> u32 {
    t.token_id(token)
        .unwrap_or_else(|| panic!("{token} not in the test vocabulary"))
}

const TEXT: &str = "the dog sat in the park";

fn injections() -> Vec<Injection> {
    let fact = |start, end, subject: &str, predicate: &str, object: &str| Injection {
        start,
        end,
        subject: subject.into(),
        predicate: predicate.into(),
        object: object.into(),
    };
    vec![
        fact(4, 7, "dog", "play", "with ball"),
        fact(19, 23, "park", "near", "tree"),
        fact(4, 7, "dog", "sleep", "home"),
    ]
}

fn fuser(t: &TextTokenizer, mode: FusionMode, limits: FusionLimits) -> Fuser {
    Fuser::new(t, mode, limits).unwrap()
}

fn one_fact_each() -> FusionLimits {
    FusionLimits {
        max_facts_per_entity: 1,
        ..FusionLimits::default()
    }
}

#[test]
fn kbert_tree_token_by_token() {
    let t = tokenizer();
    let built = fuser(&t, FusionMode::Kbert, one_fact_each())
        .build(&t, TEXT, &injections())
        .unwrap();
    let words = [
        "[CLS]", "the", "dog", "play", "with", "ball", "sat", "in", "the", "park", "near", "tree",
        "[SEP]",
    ];
    let ids: Vec<u32> = words.iter().map(|w| id(&t, w)).collect();
    let s = &built.sequence;
    assert_eq!(s.input_ids, ids);
    // Soft positions: the sentence keeps 0..=7; branches continue from their entity.
    assert_eq!(
        s.position_ids.as_deref(),
        Some(&[0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 7][..])
    );
    assert_eq!(s.token_type_ids, vec![0; 13]);
    assert_eq!(built.injected, vec![0, 1]);
    assert_eq!((built.text_tokens, built.truncated), (6, false));

    let v = s.visible.as_ref().unwrap();
    let n = 13;
    let row = |i: usize| -> Vec<usize> { (0..n).filter(|&j| v[i * n + j]).collect() };
    let trunk = vec![0, 1, 2, 6, 7, 8, 9, 12];
    // [CLS] and ordinary words see the sentence only.
    assert_eq!(row(0), trunk);
    assert_eq!(row(6), trunk);
    // "dog" sees the sentence and its branch; "park" the sentence and its own.
    assert_eq!(row(2), vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12]);
    assert_eq!(row(9), vec![0, 1, 2, 6, 7, 8, 9, 10, 11, 12]);
    // Branch tokens see their branch and their entity, nothing else.
    for i in 3..=5 {
        assert_eq!(row(i), vec![2, 3, 4, 5]);
    }
    for i in 10..=11 {
        assert_eq!(row(i), vec![9, 10, 11]);
    }
}

#[test]
fn two_facts_of_one_entity_are_separate_branches() {
    let t = tokenizer();
    let built = fuser(&t, FusionMode::Kbert, FusionLimits::default())
        .build(&t, "the dog sat", &injections())
        .unwrap();
    let s = &built.sequence;
    let words = [
        "[CLS]", "the", "dog", "play", "with", "ball", "sleep", "home", "sat", "[SEP]",
    ];
    assert_eq!(
        s.input_ids,
        words.iter().map(|w| id(&t, w)).collect::<Vec<_>>()
    );
    // Both branches start at the position after "dog".
    assert_eq!(
        s.position_ids.as_deref(),
        Some(&[0, 1, 2, 3, 4, 5, 3, 4, 3, 4][..])
    );
    let v = s.visible.as_ref().unwrap();
    let n = s.len();
    assert!(
        !v[3 * n + 6],
        "branches of one entity do not see each other"
    );
    assert!(v[6 * n + 2] && v[2 * n + 6]);
    assert_eq!(built.injected, vec![0, 2]);
}

#[test]
fn limits_cut_facts_never_text() {
    let t = tokenizer();
    // Budget of 3 injected tokens: the first branch fits, the second not.
    let small = FusionLimits {
        max_injected_tokens: 3,
        ..one_fact_each()
    };
    let built = fuser(&t, FusionMode::Kbert, small)
        .build(&t, TEXT, &injections())
        .unwrap();
    assert_eq!(built.injected, vec![0]);
    assert_eq!(built.sequence.len(), 6 + 2 + 3);
    // No room reserved for facts: no facts, text whole.
    let tight = FusionLimits {
        max_tokens: 8,
        max_injected_tokens: 0,
        ..FusionLimits::default()
    };
    for mode in [FusionMode::Kbert, FusionMode::Append] {
        let built = fuser(&t, mode, tight)
            .build(&t, TEXT, &injections())
            .unwrap();
        assert!(built.injected.is_empty(), "{mode}: no room for facts");
        assert!(built.sequence.len() <= 8);
    }
    // Longer than the text budget: the text is cut to the same length with
    // or without facts, and the facts of the cut part are dropped.
    let short = FusionLimits {
        max_tokens: 9,
        max_injected_tokens: 3,
        ..one_fact_each()
    };
    let with = fuser(&t, FusionMode::Kbert, short)
        .build(&t, TEXT, &injections())
        .unwrap();
    let without = fuser(&t, FusionMode::Kbert, short)
        .build(&t, TEXT, &[])
        .unwrap();
    assert!(with.truncated && without.truncated);
    assert_eq!((with.text_tokens, without.text_tokens), (4, 4));
    assert_eq!(with.injected, vec![0], "dog's branch fits, park was cut");
    assert_eq!(with.sequence.len(), 9);
    // A fact longer than max_tokens_per_fact is cut.
    let per_fact = FusionLimits {
        max_tokens_per_fact: 2,
        ..one_fact_each()
    };
    let built = fuser(&t, FusionMode::Kbert, per_fact)
        .build(&t, TEXT, &injections())
        .unwrap();
    let words = [
        "[CLS]", "the", "dog", "play", "with", "sat", "in", "the", "park", "near", "tree", "[SEP]",
    ];
    assert_eq!(
        built.sequence.input_ids,
        words.iter().map(|w| id(&t, w)).collect::<Vec<_>>()
    );
}

#[test]
fn append_puts_facts_in_a_second_segment() {
    let t = tokenizer();
    let built = fuser(&t, FusionMode::Append, one_fact_each())
        .build(&t, TEXT, &injections())
        .unwrap();
    let words = [
        "[CLS]", "the", "dog", "sat", "in", "the", "park", "[SEP]", "dog", "play", "with", "ball",
        "park", "near", "tree", "[SEP]",
    ];
    let s = &built.sequence;
    assert_eq!(
        s.input_ids,
        words.iter().map(|w| id(&t, w)).collect::<Vec<_>>()
    );
    assert_eq!(s.token_type_ids, [vec![0; 8], vec![1; 8]].concat());
    assert!(s.position_ids.is_none() && s.visible.is_none());
    assert_eq!(built.injected, vec![0, 1]);
}

#[test]
fn none_ignores_facts() {
    let t = tokenizer();
    let built = fuser(&t, FusionMode::None, FusionLimits::default())
        .build(&t, TEXT, &injections())
        .unwrap();
    let plain = t.encode(&[TEXT]).unwrap().remove(0).ids;
    assert_eq!(built.sequence, Sequence::plain(plain));
    assert!(built.injected.is_empty());
}

#[test]
fn mentions_outside_the_text_or_overlapping_are_skipped() {
    let t = tokenizer();
    let mut inj = injections();
    inj.push(Injection {
        start: 100,
        end: 104,
        subject: "x".into(),
        predicate: "near".into(),
        object: "sun".into(),
    });
    // "the dog" overlaps "dog", which already anchors a branch.
    inj.push(Injection {
        start: 0,
        end: 7,
        subject: "the dog".into(),
        predicate: "near".into(),
        object: "sun".into(),
    });
    let built = fuser(&t, FusionMode::Kbert, one_fact_each())
        .build(&t, TEXT, &inj)
        .unwrap();
    assert_eq!(built.injected.len(), 2);
    assert!(!built.injected.contains(&3));
}

#[test]
fn bad_limits_are_refused() {
    let t = tokenizer();
    let e = Fuser::new(
        &t,
        FusionMode::Kbert,
        FusionLimits {
            max_tokens: 2,
            ..FusionLimits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(
        e,
        FusionError::TooShort {
            max_tokens: 2,
            reserved: 32
        }
    ));
    assert_eq!("kbert".parse::<FusionMode>().unwrap(), FusionMode::Kbert);
    assert!("graph".parse::<FusionMode>().is_err());
}

/// Room for 4 of the 6 tokens of [`TEXT`] in `kbert` mode (8 less
/// [CLS], [SEP] and 2 reserved for facts), with `truncation`.
fn four_tokens(truncation: Truncation) -> FusionLimits {
    FusionLimits {
        max_tokens: 8,
        max_injected_tokens: 2,
        truncation,
        ..FusionLimits::default()
    }
}

#[test]
fn the_kept_spans_are_what_fits() {
    let t = tokenizer();
    let spans = |truncation, text| {
        fuser(&t, FusionMode::Kbert, four_tokens(truncation))
            .kept_spans(&t, text)
            .unwrap()
    };
    // "the dog sat in the park": scalars 0..3 the, 4..7 dog, 8..11 sat,
    // 12..14 in, 15..18 the, 19..23 park.
    assert_eq!(spans(Truncation::Head, TEXT), vec![0..14]);
    assert_eq!(&TEXT[0..14], "the dog sat in");
    assert_eq!(spans(Truncation::Tail, TEXT), vec![8..usize::MAX]);
    // A quarter of 4 from the start, 3 from the end.
    assert_eq!(
        spans(Truncation::HeadTail, TEXT),
        vec![0..3, 12..usize::MAX]
    );
    // A text that fits is kept whole whatever the truncation.
    for truncation in [Truncation::Head, Truncation::Tail, Truncation::HeadTail] {
        assert_eq!(spans(truncation, "the dog"), vec![0..usize::MAX]);
        assert_eq!(spans(truncation, ""), vec![0..usize::MAX]);
    }
}

#[test]
fn truncation_splits_the_budget() {
    assert_eq!(Truncation::Head.split(10, 4), (4, 0));
    assert_eq!(Truncation::Tail.split(10, 4), (0, 4));
    assert_eq!(Truncation::HeadTail.split(10, 4), (1, 3));
    // Sun et al. 2019 kept 128 + 382 of 510; a quarter rounded down is 127.
    assert_eq!(Truncation::HeadTail.split(2000, 510), (127, 383));
    for truncation in [Truncation::Head, Truncation::Tail, Truncation::HeadTail] {
        assert_eq!(truncation.split(4, 4), (4, 0));
        assert_eq!(truncation.split(0, 4), (0, 0));
    }
}

#[test]
fn tail_truncation_keeps_the_end() {
    let t = tokenizer();
    // `none` reserves nothing for facts: 6 less [CLS] and [SEP] is 4.
    let limits = FusionLimits {
        max_tokens: 6,
        truncation: Truncation::Tail,
        ..FusionLimits::default()
    };
    let built = fuser(&t, FusionMode::None, limits)
        .build(&t, TEXT, &[])
        .unwrap();
    let words = ["[CLS]", "sat", "in", "the", "park", "[SEP]"];
    assert_eq!(
        built.sequence.input_ids,
        words.iter().map(|w| id(&t, w)).collect::<Vec<_>>()
    );
    assert_eq!((built.text_tokens, built.truncated), (4, true));
}

#[test]
fn head_tail_kbert_tree_token_by_token() {
    let t = tokenizer();
    let built = fuser(&t, FusionMode::Kbert, four_tokens(Truncation::HeadTail))
        .build(&t, TEXT, &injections())
        .unwrap();
    // "dog" is in the cut middle: its facts are dropped; "park" is in the
    // tail and gets its branch (2 tokens, the whole budget).
    let words = ["[CLS]", "the", "in", "the", "park", "near", "tree", "[SEP]"];
    let s = &built.sequence;
    assert_eq!(
        s.input_ids,
        words.iter().map(|w| id(&t, w)).collect::<Vec<_>>()
    );
    // The kept tokens are numbered without the gap; the branch continues
    // from "park".
    assert_eq!(
        s.position_ids.as_deref(),
        Some(&[0, 1, 2, 3, 4, 5, 6, 5][..])
    );
    assert_eq!(built.injected, vec![1]);
    assert_eq!((built.text_tokens, built.truncated), (4, true));
    let v = s.visible.as_ref().unwrap();
    let n = 8;
    let row = |i: usize| -> Vec<usize> { (0..n).filter(|&j| v[i * n + j]).collect() };
    assert_eq!(row(1), vec![0, 1, 2, 3, 4, 7]);
    assert_eq!(row(4), (0..n).collect::<Vec<_>>());
    assert_eq!(row(5), vec![4, 5, 6]);
    // With the start kept instead, "park" is cut and "dog" gets the one of
    // its facts that fits the 2 tokens ("sleep home", not "play with ball").
    let head = fuser(&t, FusionMode::Kbert, four_tokens(Truncation::Head))
        .build(&t, TEXT, &injections())
        .unwrap();
    assert_eq!(head.injected, vec![2]);
}

#[test]
fn truncation_names_parse_and_old_limits_keep_the_start() {
    for (name, truncation) in [
        ("head", Truncation::Head),
        ("tail", Truncation::Tail),
        ("head+tail", Truncation::HeadTail),
    ] {
        assert_eq!(name.parse::<Truncation>().unwrap(), truncation);
        assert_eq!(truncation.to_string(), name);
        assert_eq!(
            serde_json::to_value(truncation).unwrap(),
            serde_json::json!(name)
        );
    }
    let err = "middle".parse::<Truncation>().unwrap_err();
    assert!(
        err.contains("\"middle\"") && err.contains("head+tail"),
        "{err}"
    );
    // A model folder written before the field existed.
    let old: FusionLimits = serde_json::from_value(serde_json::json!({
        "max_tokens": 128,
        "max_facts_per_entity": 2,
        "max_tokens_per_fact": 8,
        "max_injected_tokens": 32
    }))
    .unwrap();
    assert_eq!(old.truncation, Truncation::Head);
    assert!(serde_json::from_value::<FusionLimits>(serde_json::json!({
        "max_tokens": 128,
        "max_facts_per_entity": 2,
        "max_tokens_per_fact": 8,
        "max_injected_tokens": 32,
        "truncation": "middle"
    }))
    .is_err());
}
