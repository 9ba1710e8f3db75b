//! `POST /v1/link` on a real `graft serve` over the committed
//! customer-service graph: the answer's shape and offsets, labels in the
//! text's language, and every bad input.

mod common;
use common::*;

fn cs_server() -> Server {
    let tmp = shared_tempdir();
    let cs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/customer-service.ttl");
    graft_ok(
        &tmp,
        &[
            "graph",
            "load",
            "--graph",
            "https://w3id.org/graft/graph/customer-service",
            cs.to_str().unwrap(),
        ],
    );
    Server::start_in(&tmp, &[], Some(TOKEN))
}

fn post_link(server: &Server, body: &[u8], content_type: &str) -> (u16, String) {
    let (s, b, _) = outcome(
        agent()
            .post(&server.url("/v1/link"))
            .set("Content-Type", content_type)
            .send_bytes(body),
    );
    (s, b)
}

fn link(server: &Server, json: serde_json::Value) -> serde_json::Value {
    let (s, body) = post_link(server, json.to_string().as_bytes(), "application/json");
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn links_english_and_chinese_with_facts() {
    let server = cs_server();
    let answer = link(
        &server,
        serde_json::json!({"text": "😀 My refund has not arrived and my order has not shipped."}),
    );
    let entities = answer["entities"].as_array().unwrap();
    let refund = entities
        .iter()
        .find(|e| e["iri"] == "https://w3id.org/graft/cs/refund")
        .expect("refund linked");
    assert_eq!(
        (refund["start"].as_u64(), refund["end"].as_u64()),
        (Some(5), Some(11))
    );
    assert_eq!(refund["mention"], "refund");
    assert_eq!(refund["label"], "refund");
    assert!(refund["score"].as_f64().unwrap() >= 0.5 && refund["score"].as_f64().unwrap() <= 1.0);
    assert!(refund["types"].as_array().is_some());
    assert_eq!(answer["graph_generation"], 1);
    let facts = answer["facts"].as_array().unwrap();
    assert!(
        facts.iter().any(|f| f["subject"] == refund["iri"]
            && f["text"].as_str().unwrap().starts_with("refund — ")),
        "{facts:?}"
    );

    let answer = link(
        &server,
        serde_json::json!({"text": "我要退款", "max_facts": 1}),
    );
    let e = &answer["entities"][0];
    assert_eq!(
        (e["start"].as_u64(), e["end"].as_u64(), e["label"].as_str()),
        (Some(2), Some(4), Some("退款"))
    );
    assert_eq!(answer["facts"].as_array().unwrap().len(), 1);
    // lang picks the label language.
    let answer = link(
        &server,
        serde_json::json!({"text": "我要退款", "lang": "en"}),
    );
    assert_eq!(answer["entities"][0]["label"], "refund");
}

#[test]
fn a_graph_write_is_seen_by_the_next_link() {
    let server = cs_server();
    assert!(
        link(&server, serde_json::json!({"text": "Zorblax broke"}))["entities"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        put_turtle(
            &server,
            "http://example.org/new",
            "<http://example.org/z> <http://www.w3.org/2000/01/rdf-schema#label> \"Zorblax\"@en ."
        ),
        201
    );
    let answer = link(&server, serde_json::json!({"text": "Zorblax broke"}));
    assert_eq!(answer["entities"][0]["iri"], "http://example.org/z");
    assert_eq!(answer["graph_generation"], 2);
}

#[test]
fn the_label_index_catches_up_with_writes_in_the_background() {
    let server = cs_server();
    assert_eq!(
        put_turtle(
            &server,
            "http://example.org/new",
            "<http://example.org/q> <http://www.w3.org/2000/01/rdf-schema#label> \"Quuxly\"@en ."
        ),
        201
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let health = server.health();
        if health["label_index_generation"] == health["generation"] {
            assert_eq!(health["generation"], 2);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{health}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let answer = link(&server, serde_json::json!({"text": "Quuxly"}));
    assert_eq!(answer["entities"][0]["iri"], "http://example.org/q");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let server = cs_server();
    for text in ["", "   \n\t "] {
        let answer = link(&server, serde_json::json!({ "text": text }));
        assert_eq!(answer["entities"], serde_json::json!([]));
        assert_eq!(answer["facts"], serde_json::json!([]));
    }
    // A 10 MB text: over the documented 100,000-character bound.
    let big = serde_json::json!({"text": "refund ".repeat(10 << 20 >> 3)}).to_string();
    let (s, body) = post_link(&server, big.as_bytes(), "application/json");
    assert_error(s, 413, &body, "text_too_large");
    let (s, body) = post_link(&server, b"{\"text\": \"\xff\xfe\"}", "application/json");
    assert_error(s, 400, &body, "invalid_utf8");
    let (s, body) = post_link(&server, b"{\"text\": ", "application/json");
    assert_error(s, 400, &body, "bad_json");
    let (s, body) = post_link(&server, b"{\"text\": 42}", "application/json");
    assert_error(s, 400, &body, "bad_json");
    let (s, body) = post_link(&server, b"{}", "application/json");
    assert_error(s, 400, &body, "bad_json");
    let (s, body) = post_link(
        &server,
        b"{\"text\": \"x\", \"colour\": 1}",
        "application/json",
    );
    assert_error(s, 400, &body, "bad_json");
    let (s, body) = post_link(&server, b"{\"text\": \"refund\"}", "text/plain");
    assert_error(s, 415, &body, "unsupported_media_type");
    // Control characters, emoji, mixed scripts: fine.
    let answer = link(
        &server,
        serde_json::json!({"text": "\u{0}退款\u{7} 🙂 refund \u{202e} Zahlung"}),
    );
    assert!(answer["entities"].as_array().unwrap().len() >= 2);
    // Thousands of mentions: bounded output.
    let answer = link(
        &server,
        serde_json::json!({"text": "refund order 退款 ".repeat(5000)}),
    );
    assert!(answer["entities"].as_array().unwrap().len() <= 256);
    assert!(answer["facts"].as_array().unwrap().len() <= 20);
}

#[test]
fn link_cli_batches_survive_bad_lines_and_read_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let cs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/customer-service.ttl");
    graft_ok(tmp.path(), &["graph", "load", cs.to_str().unwrap()]);
    let input = tmp.path().join("texts.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"text\": \"我要退款\", \"max_facts\": 1}\nnot json\n{\"id\": 3}\n\n{\"id\": 4, \"text\": \"refund please\"}\n",
    )
    .unwrap();
    let out = graft(tmp.path(), &["link", "--input", input.to_str().unwrap()]);
    assert!(!out.status.success(), "bad lines make the exit status 1");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(
        lines[0]["entities"][0]["iri"],
        "https://w3id.org/graft/cs/refund"
    );
    assert_eq!(
        lines[0]["facts"].as_array().unwrap().len(),
        1,
        "per-line max_facts"
    );
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().is_some());
    assert_eq!(lines[2]["line"], 3);
    assert_eq!(lines[3]["id"], 4);
    assert_eq!(lines[3]["entities"][0]["mention"], "refund");
    // `-` reads standard input.
    let mut child = std::process::Command::new(graft_bin())
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["link", "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"text\": \"refund\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entities"][0]["iri"], "https://w3id.org/graft/cs/refund");
}
