//! `POST /v1/embed` and `graft embed` with the real all-MiniLM-L6-v2: the
//! answer's shape, agreement with the library, and every bad input.

mod common;
use common::*;
use std::path::PathBuf;

fn minilm() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

fn post(server: &Server, body: &[u8]) -> (u16, String) {
    let (s, b, _) = outcome(
        agent()
            .post(&server.url("/v1/embed"))
            .set("Content-Type", "application/json")
            .send_bytes(body),
    );
    (s, b)
}

fn embed_server() -> Server {
    let model = minilm();
    Server::start(&["--encoder", model.to_str().unwrap()])
}

#[test]
fn embeds_texts_like_the_library_does() {
    let server = embed_server();
    let (status, body) = post(
        &server,
        br#"{"texts": ["How do I reset my password?", "I forgot my password and need a new one.", "The weather is nice today."]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["dim"], 384);
    assert_eq!(v["model"], "all-MiniLM-L6-v2");
    assert_eq!(v["truncated"], serde_json::json!([]));
    let vectors: Vec<Vec<f32>> = serde_json::from_value(v["embeddings"].clone()).unwrap();
    assert_eq!(vectors.len(), 3);
    // normalize defaults to true: unit vectors, cosine = dot product.
    for vec in &vectors {
        let norm: f32 = vec.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]) + 0.3);
    // The same numbers as the library.
    let encoder = graft::encoder::Encoder::load(&minilm()).unwrap();
    let lib = encoder
        .embed(
            &["How do I reset my password?"],
            graft::encoder::Pooling::Mean,
            true,
        )
        .unwrap();
    let diff = lib.vectors[0]
        .iter()
        .zip(&vectors[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-6, "HTTP and library differ by {diff}");

    // cls and pooler pooling, unnormalised.
    for pooling in ["cls", "pooler"] {
        let (status, body) = post(
            &server,
            format!(r#"{{"texts": ["hello"], "pooling": "{pooling}", "normalize": false}}"#)
                .as_bytes(),
        );
        assert_eq!(status, 200, "{pooling}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let vec: Vec<f32> = serde_json::from_value(v["embeddings"][0].clone()).unwrap();
        let norm: f32 = vec.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() > 1e-3, "{pooling} vector was normalised");
    }
}

#[test]
fn long_texts_are_cut_and_reported() {
    let server = embed_server();
    let long = "the quarterly report was late again ".repeat(200);
    let (status, body) = post(
        &server,
        serde_json::json!({"texts": ["short one", long]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["truncated"], serde_json::json!([1]));
    assert_eq!(v["tokens"][1], 512);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let server = embed_server();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (br#"{"texts": []}"#.to_vec(), 400, "empty_input"),
        (br#"{"texts": ["fine", "  "]}"#.to_vec(), 400, "empty_text"),
        (br#"{"texts": "not a list"}"#.to_vec(), 400, "bad_json"),
        (
            br#"{"texts": ["a"], "pooling": "max"}"#.to_vec(),
            400,
            "bad_json",
        ),
        (
            br#"{"texts": ["a"], "unknown": 1}"#.to_vec(),
            400,
            "bad_json",
        ),
        (br#"{"texts": ["a""#.to_vec(), 400, "bad_json"),
        (b"{\"texts\": [\"\xff\xfe\"]}".to_vec(), 400, "invalid_utf8"),
        (
            serde_json::json!({"texts": vec!["word"; 257]})
                .to_string()
                .into_bytes(),
            413,
            "too_many_texts",
        ),
        (
            serde_json::json!({"texts": ["word ".repeat(20_001)]})
                .to_string()
                .into_bytes(),
            413,
            "text_too_large",
        ),
    ];
    for (body, status, kind) in cases {
        let (s, b) = post(&server, &body);
        assert_error(s, status, &b, kind);
    }
    let (s, b, _) = outcome(
        agent()
            .post(&server.url("/v1/embed"))
            .set("Content-Type", "text/plain")
            .send_string("hello"),
    );
    assert_error(s, 415, &b, "unsupported_media_type");
    // The server still answers after all that.
    let (s, _) = post(&server, br#"{"texts": ["still here"]}"#);
    assert_eq!(s, 200);
}

#[test]
fn without_an_encoder_embed_says_so() {
    let server = Server::start(&[]);
    let (s, b) = post(&server, br#"{"texts": ["hello"]}"#);
    assert_error(s, 503, &b, "no_encoder");
}

#[test]
fn cli_prints_vectors_and_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let model = minilm();
    let out = graft_ok(
        tmp.path(),
        &[
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--normalize",
            "first text",
            "second",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dim"], 384);
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);

    let bad = graft(
        tmp.path(),
        &["embed", "--model", model.to_str().unwrap(), ""],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("text 0 is empty"));

    let missing = graft(
        tmp.path(),
        &["embed", "--model", "/nonexistent/model", "hello"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model"));

    let too_long = graft(
        tmp.path(),
        &[
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--max-tokens",
            "513",
            "hello",
        ],
    );
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("exceeds the model's 512 positions"));

    let lines = tmp.path().join("texts.txt");
    std::fs::write(&lines, "one\ntwo\nthree\n").unwrap();
    let out = graft_ok(
        tmp.path(),
        &[
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--input",
            lines.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 3);
}
