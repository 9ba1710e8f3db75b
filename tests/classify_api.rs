//! `POST /v1/classify`, `/v1/models`, reloads, the answer cache, `/metrics`,
//! `/openapi.json` and every bad input of the service issue, against real
//! `graft serve` processes with a real classifier: all-MiniLM-L6-v2 with a
//! K-BERT head trained (frozen encoder) on support tickets, over the
//! committed customer-service graph.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CS_GRAPH: &str = "https://w3id.org/graft/graph/customer-service";

/// Support tickets by intent; most name a product, a delivery or a payment
/// term of the customer-service graph.
const TICKETS: [(&str, &str); 24] = [
    ("my Aurora Phone 12 will not start", "technical"),
    ("the Lumen Buds Pro sound is broken", "technical"),
    ("Aurora Book 14 screen went dark", "technical"),
    ("the Aurora Watch 3 keeps rebooting", "technical"),
    ("my Aurora Phone 12 battery drains in an hour", "technical"),
    ("Lumen Buds Pro will not pair with my laptop", "technical"),
    ("the Aurora Book 14 keyboard stopped working", "technical"),
    ("Aurora Watch 3 does not charge any more", "technical"),
    ("where is my express delivery", "shipping"),
    ("the delivery of my order is late", "shipping"),
    ("my order has not arrived", "shipping"),
    ("the tracking number shows nothing", "shipping"),
    ("I think my package is a lost package", "shipping"),
    ("when will my order be shipped", "shipping"),
    ("express delivery was promised for yesterday", "shipping"),
    ("the order status has said pending for a week", "shipping"),
    (
        "I was charged twice, a double charge on my credit card",
        "billing",
    ),
    ("please send the invoice for my payment", "billing"),
    ("I want a refund for my payment", "billing"),
    ("my payment failure message makes no sense", "billing"),
    ("the credit card payment was declined", "billing"),
    ("I need a copy of my invoice", "billing"),
    ("how do I change my payment method", "billing"),
    ("I opened a payment dispute with my bank", "billing"),
];

struct Fixture {
    /// A data dir with the customer-service graph (copied per test).
    store: PathBuf,
    /// K-BERT classifier folder.
    kbert: PathBuf,
    /// The same data, fusion `none`.
    plain: PathBuf,
}

fn minilm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2")
}

fn write_tickets(dir: &Path) -> PathBuf {
    let lines: Vec<String> = TICKETS
        .iter()
        .map(|(t, l)| json!({"text": t, "label": l}).to_string())
        .collect();
    let path = dir.join("tickets.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// Trains a classifier on the tickets over `store` into `out`.
fn train(store: &Path, out: &Path, fusion: &str, seed: &str) {
    let data = write_tickets(store.parent().unwrap());
    let d = data.to_str().unwrap();
    graft_ok(
        store,
        &[
            "train",
            "--model",
            minilm().to_str().unwrap(),
            "--train",
            d,
            "--dev",
            d,
            "--fusion",
            fusion,
            "--freeze-encoder",
            "--max-len",
            "96",
            "--epochs",
            "30",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = shared_tempdir();
        let store = tmp.join("store");
        let cs = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/customer-service.ttl");
        graft_ok(
            &store,
            &["graph", "load", "--graph", CS_GRAPH, cs.to_str().unwrap()],
        );
        let kbert = tmp.join("kbert");
        let plain = tmp.join("plain");
        train(&store, &kbert, "kbert", "1");
        train(&store, &plain, "none", "1");
        Fixture {
            store,
            kbert,
            plain,
        }
    })
}

/// Copies a folder (a store or a model) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -r {} {}",
        from.display(),
        to.display()
    );
}

/// A copy of the fixture's store, so each test has its own server.
fn fresh_store(tmp: &Path) -> PathBuf {
    fresh_store_at(&tmp.join("data"))
}

fn fresh_store_at(dir: &Path) -> PathBuf {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    copy_dir(&fixture().store, &dir);
    dir
}

fn serve(tmp: &Path, extra: &[&str]) -> Server {
    let f = fixture();
    let model = format!("cs={}", f.kbert.display());
    let mut args = vec!["--model", model.as_str()];
    args.extend_from_slice(extra);
    Server::start_in(&fresh_store(tmp), &args, Some(TOKEN))
}

fn classify(server: &Server, body: &Value) -> (u16, Value) {
    let (status, text, _) = outcome(
        agent()
            .post(&server.url("/v1/classify"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

fn ok(server: &Server, body: &Value) -> Value {
    let (status, v) = classify(server, body);
    assert_eq!(status, 200, "{v}");
    v
}

fn metrics(server: &Server) -> String {
    agent()
        .get(&server.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

/// The value of an unlabelled metric line, e.g. `graft_cache_entries 3`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn a_ticket_gets_its_label_entities_and_injected_facts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let text = "my Aurora Phone 12 screen is broken";
    let a = ok(&server, &json!({"text": text, "top_k": 10}));
    assert_eq!(a["label"], "technical", "{a}");
    let ranking = a["ranking"].as_array().unwrap();
    assert_eq!(
        ranking.len(),
        3,
        "top_k above the label count gives every label"
    );
    let scores: Vec<f64> = ranking
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    assert!(
        (scores.iter().sum::<f64>() - 1.0).abs() < 1e-4,
        "softmax: {scores:?}"
    );
    assert_eq!(a["score"].as_f64().unwrap(), scores[0]);
    assert_eq!(a["fallback"], false);
    assert!(a.get("labels").is_none(), "single-label model");
    // The product is linked, with offsets in Unicode scalars.
    let entities = a["entities"].as_array().unwrap();
    let phone = entities
        .iter()
        .find(|e| e["mention"] == "Aurora Phone 12")
        .unwrap_or_else(|| panic!("Aurora Phone 12 linked: {a}"));
    let (s, e) = (
        phone["start"].as_u64().unwrap() as usize,
        phone["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(
        text.chars().skip(s).take(e - s).collect::<String>(),
        "Aurora Phone 12"
    );
    // Facts injected into the input are anchored on a linked entity.
    let facts = a["facts"].as_array().unwrap();
    assert!(!facts.is_empty(), "{a}");
    for f in facts {
        assert!(entities
            .iter()
            .any(|e| e["start"] == f["start"] && e["end"] == f["end"]));
        assert!(!f["predicate"].as_str().unwrap().is_empty());
    }
    assert_eq!(a["cached"], false);
    assert_eq!(a["graph_generation"].as_u64().unwrap(), server.generation());
    let models: Value = agent()
        .get(&server.url("/v1/models"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(a["model"]["name"], "cs");
    assert_eq!(
        a["model"]["fingerprint"],
        models["models"][0]["fingerprint"]
    );
    for part in ["total", "link", "encode"] {
        assert!(a["timing_ms"][part].as_f64().unwrap() >= 0.0);
    }
    // The same request again comes from the cache, with the same answer.
    let again = ok(&server, &json!({"text": text, "top_k": 10}));
    assert_eq!(again["cached"], true);
    for field in [
        "label",
        "score",
        "ranking",
        "entities",
        "facts",
        "model",
        "graph_generation",
    ] {
        assert_eq!(again[field], a[field], "{field}");
    }
    let m = metrics(&server);
    assert!(
        m.contains("graft_cache_lookups_total{result=\"hit\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("graft_cache_lookups_total{result=\"miss\"} 1"),
        "{m}"
    );
}

#[test]
fn batches_options_and_the_same_model_without_the_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let texts = [
        "where is my express delivery, the order is late",
        "I want a refund, there is a double charge",
        "Lumen Buds Pro crackle",
    ];
    let batch = ok(&server, &json!({"texts": texts}));
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (text, r) in texts.iter().zip(results) {
        // Each batch answer is the answer the text gets alone (the cache
        // is off for this comparison: `top_k` 4 is another key).
        let alone = ok(&server, &json!({"text": text, "top_k": 4}));
        assert_eq!(alone["cached"], false);
        assert_eq!(alone["label"], r["label"], "{text}");
        let (x, y) = (
            alone["score"].as_f64().unwrap(),
            r["score"].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() < 1e-5,
            "{text}: {x} vs {y} (batched with others)"
        );
    }
    assert_eq!(results[0]["label"], "shipping");
    assert_eq!(results[1]["label"], "billing");

    let top1 = ok(&server, &json!({"text": texts[0], "top_k": 1}));
    assert_eq!(top1["ranking"].as_array().unwrap().len(), 1);

    let unsure = ok(&server, &json!({"text": texts[0], "threshold": 0.999999}));
    assert_eq!(unsure["label"], "out_of_scope");
    assert_eq!(unsure["fallback"], true);
    assert_eq!(unsure["ranking"][0]["label"], results[0]["label"]);

    let quiet = ok(&server, &json!({"text": texts[0], "explain": false}));
    assert_eq!(quiet["entities"], json!([]));
    assert_eq!(quiet["facts"], json!([]));
    assert_eq!(quiet["label"], results[0]["label"]);
    assert_eq!(quiet["cached"], false, "explain is part of the key");

    let no_graph = ok(&server, &json!({"text": texts[0], "use_graph": false}));
    assert_eq!(no_graph["facts"], json!([]));
    assert_eq!(no_graph["entities"], json!([]));
    assert_eq!(no_graph["cached"], false, "use_graph is part of the key");
    assert_ne!(
        no_graph["score"], results[0]["score"],
        "without facts the K-BERT input differs, so does the score"
    );
}

#[test]
fn several_models_are_listed_and_chosen_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = format!("plain={}", fixture().plain.display());
    let server = serve(tmp.path(), &["--model", &plain]);
    let models: Value = agent()
        .get(&server.url("/v1/models"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models["default"], "cs");
    let list = models["models"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["fusion"], "kbert");
    assert_eq!(list[1]["name"], "plain");
    assert_eq!(list[1]["fusion"], "none");
    // Trained with the default truncation: the start of a longer text is kept.
    assert_eq!(list[1]["truncation"], "head");
    assert_eq!(
        list[1]["labels"],
        json!(["billing", "shipping", "technical"])
    );
    assert!(list[0]["metrics"]["dev"].is_object(), "{}", list[0]);
    assert_ne!(list[0]["fingerprint"], list[1]["fingerprint"]);
    let a = ok(
        &server,
        &json!({"text": "my Aurora Phone 12 will not start", "model": "plain"}),
    );
    assert_eq!(a["model"]["name"], "plain");
    assert_eq!(a["label"], "technical");
    assert_eq!(a["facts"], json!([]), "a fusion-none model injects nothing");
    let (status, body) = classify(&server, &json!({"text": "hello", "model": "nope"}));
    assert_error(status, 404, &body.to_string(), "unknown_model");
}

#[test]
fn every_bad_request_gets_its_error_and_nothing_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let post = |content_type: &str, body: Vec<u8>| {
        outcome(
            agent()
                .post(&server.url("/v1/classify"))
                .set("Content-Type", content_type)
                .send_bytes(&body),
        )
    };
    let json_post = |v: Value| post("application/json", v.to_string().into_bytes());
    type Case<'a> = ((u16, String, Option<String>), u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            post("application/json", b"{\"text\": ".to_vec()),
            400,
            "bad_json",
        ),
        (json_post(json!({"text": 5})), 400, "bad_json"),
        (json_post(json!({"texts": "one"})), 400, "bad_json"),
        (
            json_post(json!({"text": "a", "colour": "red"})),
            400,
            "bad_json",
        ),
        (json_post(json!({"texts": []})), 400, "bad_request"),
        (json_post(json!({"text": "  "})), 400, "bad_request"),
        (json_post(json!({})), 400, "bad_request"),
        (
            json_post(json!({"text": "a", "texts": ["b"]})),
            400,
            "bad_request",
        ),
        (
            json_post(json!({"text": "a", "top_k": 0})),
            400,
            "bad_request",
        ),
        (
            json_post(json!({"text": "a", "threshold": 1.5})),
            400,
            "bad_request",
        ),
        (
            json_post(json!({"texts": vec!["my order"; 65]})),
            413,
            "too_many_texts",
        ),
        (
            json_post(json!({"text": "order ".repeat(20_000)})),
            413,
            "text_too_large",
        ),
        (
            post("application/json", b"{\"text\": \"caf\xe9\"}".to_vec()),
            400,
            "invalid_utf8",
        ),
        (
            post("text/plain", b"my order".to_vec()),
            415,
            "unsupported_media_type",
        ),
        (
            json_post(json!({"text": "a", "model": "other"})),
            404,
            "unknown_model",
        ),
    ];
    for ((status, body, _), expected, kind) in cases {
        assert_error(status, expected, &body, kind);
    }
    let m = metrics(&server);
    assert_eq!(
        metric(&m, "graft_cache_entries"),
        0.0,
        "failed requests cache nothing"
    );
    // A method the route does not have: 405 with the methods it has.
    let Err(ureq::Error::Status(405, response)) = agent().get(&server.url("/v1/classify")).call()
    else {
        panic!("GET /v1/classify must be 405");
    };
    assert_eq!(response.header("Allow"), Some("POST"));
    assert_error(
        405,
        405,
        &response.into_string().unwrap(),
        "method_not_allowed",
    );
    // The server still serves.
    assert_eq!(
        ok(&server, &json!({"text": "my order has not arrived"}))["label"],
        "shipping"
    );
}

/// Sends a request head and part of its body, then stalls.
fn stall(server: &Server, declared: usize, sent: &[u8]) -> TcpStream {
    let addr = server.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/classify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    .unwrap();
    s.write_all(sent).unwrap();
    s
}

#[test]
fn a_slow_client_gets_408_and_does_not_hold_up_others() {
    let tmp = tempfile::tempdir().unwrap();
    // One slot for requests in flight: a client stalling mid-body must not hold it.
    let server = serve(
        tmp.path(),
        &["--body-timeout-s", "1", "--max-concurrent", "1"],
    );
    let started = Instant::now();
    let mut slow = stall(&server, 200, b"{\"text\": \"my ord");
    // Others are served while it stalls.
    assert_eq!(
        ok(&server, &json!({"text": "where is my express delivery"}))["label"],
        "shipping"
    );
    // A stalled SPARQL body times out too.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut sparql = TcpStream::connect(&addr).unwrap();
    write!(
        sparql,
        "POST /sparql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sparql-query\r\nContent-Length: 40\r\n\r\nASK"
    )
    .unwrap();
    sparql
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = sparql.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = String::new();
    let _ = slow.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request_timeout"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_cancelled_request_computes_and_caches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Batches wait up to 300 ms for company, so the client is gone before
    // the encoder runs.
    let server = serve(tmp.path(), &["--batch-wait-ms", "300"]);
    let texts: Vec<String> = (0..8)
        .map(|i| format!("my order {i} has not arrived"))
        .collect();
    let body = json!({"texts": texts}).to_string();
    let s = stall(&server, body.len(), body.as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    s.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(600));
    let m = metrics(&server);
    assert_eq!(metric(&m, "graft_cache_entries"), 0.0, "{m}");
    assert_eq!(
        metric(&m, "graft_batch_sequences_count"),
        0.0,
        "no encoder pass ran: {m}"
    );
    let a = ok(&server, &json!({"text": texts[0]}));
    assert_eq!(a["cached"], false);
}

#[test]
fn a_graph_write_makes_cached_answers_unreachable_and_they_are_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let text = json!({"text": "the Aurora Watch 3 screen is cracked"});
    let first = ok(&server, &text);
    assert_eq!(first["cached"], false);
    assert_eq!(ok(&server, &text)["cached"], true);
    let generation = server.generation();
    let (status, body) = update(
        &server,
        "INSERT DATA { GRAPH <http://example.org/extra> { <http://example.org/x> <http://www.w3.org/2000/01/rdf-schema#label> \"x\" } }",
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.generation(), generation + 1);
    let after = ok(&server, &text);
    assert_eq!(after["cached"], false, "a write changes the key");
    assert_eq!(after["graph_generation"].as_u64().unwrap(), generation + 1);
    assert_eq!(ok(&server, &text)["cached"], true);
    // The entry of the old generation is purged in the background (every 5 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries = metric(&metrics(&server), "graft_cache_entries");
        if entries == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{entries} entries left");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_cache_survives_a_restart_and_a_corrupt_cache_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let text = json!({"text": "I need a copy of my invoice"});
    assert_eq!(ok(&server, &text)["cached"], false);
    let data_dir = server.data_dir.clone();
    assert!(server.terminate().success());
    let model = format!("cs={}", fixture().kbert.display());
    let server = Server::start_in(&data_dir, &["--model", &model], Some(TOKEN));
    assert_eq!(ok(&server, &text)["cached"], true, "kept across restarts");
    assert!(server.terminate().success());
    // The store deleted and made again under the kept cache: its generation
    // counts from 0 again and reaches the old value with other data, so the
    // old answers must not be served.
    let generation = std::fs::read_to_string(data_dir.join("generation")).unwrap();
    std::fs::remove_dir_all(data_dir.join("store")).unwrap();
    std::fs::remove_file(data_dir.join("generation")).unwrap();
    let cs = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/customer-service.ttl");
    graft_ok(
        &data_dir,
        &["graph", "load", "--graph", CS_GRAPH, cs.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(data_dir.join("generation")).unwrap(),
        generation,
        "the new store is at the old generation"
    );
    let server = Server::start_in(&data_dir, &["--model", &model], Some(TOKEN));
    assert_eq!(ok(&server, &text)["cached"], false, "another store");
    assert!(server.terminate().success());
    // Other linking settings may give other facts: the old answers are not served.
    let config = tmp.path().join("link.json");
    std::fs::write(&config, r#"{"max_facts_per_text": 1}"#).unwrap();
    let server = Server::start_in(
        &data_dir,
        &["--model", &model, "--link-config", config.to_str().unwrap()],
        Some(TOKEN),
    );
    assert_eq!(ok(&server, &text)["cached"], false, "another --link-config");
    assert!(server.terminate().success());
    // Damage every file of the cache.
    for entry in walk(&data_dir.join("cache")) {
        std::fs::write(entry, vec![0x5Au8; 3000]).unwrap();
    }
    let server = Server::start_in(&data_dir, &["--model", &model], Some(TOKEN));
    let a = ok(&server, &text);
    assert_eq!(a["cached"], false, "rebuilt empty");
    assert_eq!(a["label"], "billing");
    assert_eq!(ok(&server, &text)["cached"], true, "and working");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_model_reloads_under_load_without_dropping_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("model");
    copy_dir(&fixture().kbert, &folder);
    let model = format!("cs={}", folder.display());
    let server = Server::start_in(&fresh_store(tmp.path()), &["--model", &model], Some(TOKEN));
    let reload = |token: Option<&str>| {
        let mut r = agent().post(&server.url("/v1/models/cs/reload"));
        if let Some(t) = token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        outcome(r.call())
    };
    let m = metrics(&server);
    for result in ["ok", "failed"] {
        let series = format!("graft_model_reloads_total{{model=\"cs\",result=\"{result}\"}} 0");
        assert!(m.contains(&series), "declared before any reload: {m}");
    }
    let (status, body, _) = reload(None);
    assert_error(status, 401, &body, "unauthorized");
    let (status, body, _) = reload(Some("wrong"));
    assert_error(status, 401, &body, "unauthorized");
    let before = ok(&server, &json!({"text": "my order has not arrived"}));

    // Four clients classify distinct texts while the model is reloaded.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (url, stop) = (server.url("/v1/classify"), stop.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 5 {
                    let body = json!({"text": format!("client {c} asks about order {i}")});
                    let (s, b, _) = outcome(
                        agent()
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body.to_string()),
                    );
                    statuses.push((s, b));
                    i += 1;
                }
                statuses
            })
        })
        .collect();
    for _ in 0..3 {
        let (status, body, _) = reload(Some(TOKEN));
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["fingerprint"], v["previous_fingerprint"],
            "same folder, same bytes"
        );
    }
    // Retrain into the same folder (another seed), then reload under load.
    let other_store = fresh_store_at(&tmp.path().join("training").join("data"));
    train(&other_store, &tmp.path().join("retrained"), "kbert", "2");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::rename(tmp.path().join("retrained"), &folder).unwrap();
    let (status, body, _) = reload(Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_ne!(
        v["fingerprint"], v["previous_fingerprint"],
        "retrained: {v}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answered = 0;
    for c in clients {
        for (s, b) in c.join().unwrap() {
            assert_eq!(s, 200, "{b}");
            answered += 1;
        }
    }
    assert!(answered >= 20);
    let after = ok(&server, &json!({"text": "my order has not arrived"}));
    assert_eq!(
        after["cached"], false,
        "a new model does not see the old answers"
    );
    assert_eq!(after["model"]["fingerprint"], v["fingerprint"]);
    assert_ne!(
        after["model"]["fingerprint"],
        before["model"]["fingerprint"]
    );
    let m = metrics(&server);
    assert!(
        m.contains("graft_model_reloads_total{model=\"cs\",result=\"ok\"} 4"),
        "{m}"
    );
}

#[test]
fn reloads_need_a_configured_token() {
    let tmp = tempfile::tempdir().unwrap();
    let model = format!("cs={}", fixture().kbert.display());
    let server = Server::start_in(&fresh_store(tmp.path()), &["--model", &model], None);
    let (status, body, _) = outcome(
        agent()
            .post(&server.url("/v1/models/cs/reload"))
            .set("Authorization", "Bearer anything")
            .call(),
    );
    assert_error(status, 403, &body, "writes_disabled");
    let (status, body, _) = outcome(agent().post(&server.url("/v1/models/other/reload")).call());
    assert_error(status, 403, &body, "writes_disabled");
}

#[test]
fn requests_over_the_concurrency_limit_get_429() {
    let tmp = tempfile::tempdir().unwrap();
    // One request at a time, and batches that wait 1 s for company: the
    // first request holds the only slot for a second.
    let server = serve(
        tmp.path(),
        &[
            "--max-concurrent",
            "1",
            "--batch-wait-ms",
            "1000",
            "--no-cache",
        ],
    );
    let url = server.url("/v1/classify");
    let first = std::thread::spawn(move || {
        outcome(
            agent()
                .post(&url)
                .set("Content-Type", "application/json")
                .send_string(&json!({"text": "my order has not arrived"}).to_string()),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = classify(&server, &json!({"text": "where is my parcel"}));
    assert_error(status, 429, &body.to_string(), "too_many_requests");
    let (status, body, _) = first.join().unwrap();
    assert_eq!(status, 200, "{body}");
    // The slot is free again.
    assert_eq!(
        classify(&server, &json!({"text": "where is my parcel"})).0,
        200
    );
}

#[test]
fn without_a_model_classify_says_so() {
    let server = Server::start(&[]);
    let (status, body) = classify(&server, &json!({"text": "hello"}));
    assert_error(status, 503, &body.to_string(), "no_model");
    let models: Value = agent()
        .get(&server.url("/v1/models"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models, json!({"default": null, "models": []}));
}

#[test]
fn request_ids_metrics_and_the_openapi_document() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let r = agent()
        .get(&server.url("/health"))
        .set("X-Request-Id", "ticket-42")
        .call()
        .unwrap();
    assert_eq!(r.header("X-Request-Id"), Some("ticket-42"));
    let r = agent().get(&server.url("/health")).call().unwrap();
    let id = r.header("X-Request-Id").unwrap().to_owned();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // A header that is not a short token is replaced.
    let r = agent()
        .get(&server.url("/health"))
        .set("X-Request-Id", "a b")
        .call()
        .unwrap();
    assert_ne!(r.header("X-Request-Id"), Some("a b"));

    ok(
        &server,
        &json!({"texts": ["my order has not arrived", "refund please"]}),
    );
    let m = metrics(&server);
    for needle in [
        "graft_http_requests_total{method=\"POST\",route=\"/v1/classify\",status=\"200\"} 1",
        "graft_http_request_duration_seconds_bucket{route=\"/v1/classify\"",
        "graft_batch_sequences_sum 2",
        "graft_encoder_seconds_count 1",
        "graft_link_seconds_count 2",
        "graft_cache_lookups_total{result=\"miss\"} 2",
        "graft_graph_generation 1",
        "graft_cache_entries 2",
    ] {
        assert!(m.contains(needle), "{needle} missing in\n{m}");
    }

    let doc: Value = agent()
        .get(&server.url("/openapi.json"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/classify",
        "/v1/models",
        "/v1/models/{name}/reload",
        "/v1/link",
        "/v1/embed",
        "/sparql",
        "/store",
        "/health",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // Operation IDs are unique (OpenAPI requires it; code generators rely on it).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operationId");
    assert!(n >= 16, "{n} operations");
    let answer = &doc["components"]["schemas"]["Answer"]["properties"];
    for field in [
        "label",
        "score",
        "ranking",
        "entities",
        "facts",
        "cached",
        "model",
        "graph_generation",
        "timing_ms",
    ] {
        assert!(answer[field].is_object(), "Answer.{field} missing");
    }
    let console = agent().get(&server.url("/")).call().unwrap();
    assert!(console
        .header("Content-Type")
        .unwrap()
        .starts_with("text/html"));
    let page = console.into_string().unwrap();
    assert!(page.contains("/v1/classify"));
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(
            !page.contains(external),
            "the console loads nothing from elsewhere: {external}"
        );
    }
}

/// The web console in headless Chromium (Debian `chromium`, driven by
/// playwright-core: `tests/console/console.mjs`): classify a ticket, see
/// the label, the score bars, the product highlighted and the injected
/// facts; run the SPARQL box; a bad query shows its error.
#[test]
fn the_console_classifies_and_queries_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console.mjs");
    let screenshot = tmp.path().join("console.png");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(&server.base)
        .args([
            "--text",
            "my Aurora Phone 12 will not start after the update",
        ])
        .args(["--expect-label", "technical"])
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .expect("node (tests/console: npm ci first; scripts/test.sh does)");
    assert!(
        out.status.success(),
        "console checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}

#[test]
fn concurrent_requests_share_encoder_passes() {
    let tmp = tempfile::tempdir().unwrap();
    // Batches wait up to 300 ms for company: eight clients that arrive
    // together are encoded in fewer passes than requests.
    let server = serve(tmp.path(), &["--batch-wait-ms", "300", "--no-cache"]);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (url, barrier) = (server.url("/v1/classify"), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                outcome(
                    agent()
                        .post(&url)
                        .set("Content-Type", "application/json")
                        .send_string(&json!({"text": TICKETS[i * 3].0}).to_string()),
                )
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let (status, body, _) = c.join().unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["label"], TICKETS[i * 3].1, "{body}");
    }
    let m = metrics(&server);
    assert_eq!(metric(&m, "graft_batch_sequences_sum"), 8.0, "{m}");
    let passes = metric(&m, "graft_batch_sequences_count");
    assert!(passes <= 3.0, "8 requests in {passes} encoder passes");
}

#[test]
fn sighup_reloads_every_model() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = format!("plain={}", fixture().plain.display());
    let server = serve(tmp.path(), &["--model", &plain]);
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = metrics(&server);
        if m.contains("graft_model_reloads_total{model=\"cs\",result=\"ok\"} 1")
            && m.contains("graft_model_reloads_total{model=\"plain\",result=\"ok\"} 1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no reload after SIGHUP:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ok(&server, &json!({"text": "refund please", "model": "plain"}))["model"]["name"],
        "plain"
    );
}

#[test]
fn a_folder_that_no_longer_loads_keeps_the_old_copy_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("model");
    copy_dir(&fixture().kbert, &folder);
    let model = format!("cs={}", folder.display());
    let server = Server::start_in(&fresh_store(tmp.path()), &["--model", &model], Some(TOKEN));
    let before = ok(&server, &json!({"text": "my order has not arrived"}));
    std::fs::write(folder.join("graft.json"), "{ not json").unwrap();
    let (status, body, _) = outcome(
        agent()
            .post(&server.url("/v1/models/cs/reload"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    );
    let v = assert_error(status, 500, &body, "model_load_failed");
    assert!(v["error"].as_str().unwrap().contains("graft.json"), "{v}");
    let after = ok(&server, &json!({"text": "where is my express delivery"}));
    assert_eq!(
        after["model"]["fingerprint"],
        before["model"]["fingerprint"]
    );
    let m = metrics(&server);
    assert!(
        m.contains("graft_model_reloads_total{model=\"cs\",result=\"failed\"} 1"),
        "{m}"
    );
}

#[test]
fn graft_classify_answers_as_the_server_does_and_reads_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture();
    let store = fresh_store(tmp.path());
    let model = f.kbert.to_str().unwrap();
    let texts = [
        "my Aurora Phone 12 will not start",
        "I need a copy of my invoice",
    ];
    let mut lines: Vec<String> = texts
        .iter()
        .enumerate()
        // A prepared data set's line carries its `label`: ignored.
        .map(|(i, t)| json!({"text": t, "id": i, "label": "billing"}).to_string())
        .collect();
    lines.insert(1, "{\"txt\": \"typo\"}".into());
    lines.push(json!({"text": " "}).to_string());
    // A misspelled `id` is ignored, with one warning per field name.
    lines.push(json!({"text": texts[1], "ID": 7}).to_string());
    lines.push(json!({"text": texts[1], "ID": 8}).to_string());
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = graft(
        &store,
        &[
            "classify",
            "--model",
            model,
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "bad lines make the exit code 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 of 6 lines failed"), "{stderr}");
    assert_eq!(stderr.matches("field `ID` ignored").count(), 1, "{stderr}");
    assert!(
        stderr.contains("in.jsonl:5: field `ID` ignored"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("`label`"),
        "a data set's label is ignored quietly: {stderr}"
    );
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 6, "one line out per line in");
    assert_eq!(answers[1]["kind"], "bad_json");
    assert_eq!(answers[1]["line"], 2);
    assert_eq!(answers[3]["kind"], "bad_request");
    assert_eq!(answers[4]["label"], answers[2]["label"]);
    assert!(answers[4].get("id").is_none(), "{}", answers[4]);
    let single: Value =
        serde_json::from_str(&graft_ok(&store, &["classify", "--model", model, texts[0]])).unwrap();
    // The server, over the same store and model, gives the same answers.
    let name = format!("cs={model}");
    let server = Server::start_in(&store, &["--model", &name, "--no-cache"], Some(TOKEN));
    for (i, answer) in [&answers[0], &answers[2]].into_iter().enumerate() {
        assert_eq!(answer["id"], i);
        let http = ok(&server, &json!({"text": texts[i]}));
        for field in ["label", "ranking", "entities", "facts", "graph_generation"] {
            assert_eq!(answer[field], http[field], "{field} of {:?}", texts[i]);
        }
    }
    assert_eq!(single["label"], answers[0]["label"]);
    assert_eq!(single["facts"], answers[0]["facts"]);
}

#[test]
fn a_models_folder_serves_every_classifier_in_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    std::fs::create_dir_all(root.join("not-a-model")).unwrap();
    for (name, from) in [
        ("tickets", &fixture().kbert),
        ("tickets-plain", &fixture().plain),
    ] {
        copy_dir(from, &root.join(name));
    }
    let server = Server::start_in(
        &fresh_store(tmp.path()),
        &["--models-dir", root.to_str().unwrap()],
        Some(TOKEN),
    );
    let models: Value = agent()
        .get(&server.url("/v1/models"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["tickets", "tickets-plain"],
        "folders without graft.json are skipped"
    );
    let a = ok(
        &server,
        &json!({"text": "refund please", "model": "tickets-plain"}),
    );
    assert_eq!(a["model"]["name"], "tickets-plain");
}

#[test]
fn two_names_for_one_folder_share_answers_but_each_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let b = format!("b={}", fixture().kbert.display());
    let server = serve(tmp.path(), &["--model", &b]);
    let text = "the tracking number shows nothing";
    let a = ok(&server, &json!({"text": text, "model": "cs"}));
    let other = ok(&server, &json!({"text": text, "model": "b"}));
    assert_eq!(
        other["cached"], true,
        "same folder, same fingerprint, same entry"
    );
    assert_eq!(other["model"]["name"], "b");
    assert_eq!(other["label"], a["label"]);
    // Reloading a name that is not served is a 404 and mints no metric.
    let (status, body, _) = outcome(
        agent()
            .post(&server.url("/v1/models/made-up/reload"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    );
    assert_error(status, 404, &body, "unknown_model");
    assert!(!metrics(&server).contains("made-up"));
    // HEAD probes of /health.
    let head = agent().head(&server.url("/health")).call().unwrap();
    assert_eq!(head.status(), 200);
}

#[test]
fn offsets_point_into_the_text_as_sent_in_link_and_classify_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(tmp.path(), &[]);
    // A decomposed accent before the product: NFC would shift the offsets.
    let text = "Cafe\u{301} note: my Aurora Phone 12 will not start";
    let classified = ok(&server, &json!({"text": text}));
    let (status, linked, _) = outcome(
        agent()
            .post(&server.url("/v1/link"))
            .set("Content-Type", "application/json")
            .send_string(&json!({"text": text}).to_string()),
    );
    assert_eq!(status, 200);
    let linked: Value = serde_json::from_str(&linked).unwrap();
    let span = |v: &Value| {
        let e = v["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["mention"] == "Aurora Phone 12")
            .unwrap_or_else(|| panic!("{v}"))
            .clone();
        (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        )
    };
    assert_eq!(span(&classified), span(&linked));
    let (s, e) = span(&classified);
    assert_eq!(
        text.chars().skip(s).take(e - s).collect::<String>(),
        "Aurora Phone 12"
    );
}

#[test]
fn a_multi_label_model_answers_every_label_above_its_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fresh_store(tmp.path());
    // Tickets about a product *and* money carry both labels.
    let mut lines: Vec<String> = TICKETS
        .iter()
        .map(|(t, l)| json!({"text": t, "label": [l]}).to_string())
        .collect();
    for t in [
        "my Aurora Phone 12 broke and I want a refund",
        "the Lumen Buds Pro stopped working, send my money back",
        "Aurora Book 14 screen is dead, I was charged twice for it",
        "the Aurora Watch 3 is broken and the invoice is wrong",
    ] {
        lines.push(json!({"text": t, "label": ["technical", "billing"]}).to_string());
    }
    let data = tmp.path().join("multi.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = tmp.path().join("multi");
    let d = data.to_str().unwrap();
    graft_ok(
        &store,
        &[
            "train",
            "--model",
            minilm().to_str().unwrap(),
            "--train",
            d,
            "--dev",
            d,
            "--multi-label",
            "--fusion",
            "kbert",
            "--freeze-encoder",
            "--max-len",
            "96",
            "--epochs",
            "60",
            "--seed",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let model = format!("multi={}", out.display());
    let server = Server::start_in(&store, &["--model", &model], Some(TOKEN));
    let text = "my Aurora Phone 12 is broken and I want a refund";
    let score_of = |a: &Value, label: &str| {
        a["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .unwrap()["score"]
            .as_f64()
            .unwrap()
    };
    // An answer's `labels`, sorted.
    let labels_of = |a: &Value| -> Vec<String> {
        let mut labels: Vec<String> = a["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect();
        labels.sort_unstable();
        labels
    };
    let a = ok(&server, &json!({"text": text, "top_k": 3}));
    let scores: Vec<f64> = a["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.iter().sum::<f64>() > 1.05,
        "independent sigmoids, not a softmax: {scores:?}"
    );
    // Without a threshold: the labels at or above the model's 0.5, or the
    // best one when none is.
    let mut expected: Vec<String> = ["billing", "shipping", "technical"]
        .into_iter()
        .filter(|l| score_of(&a, l) >= 0.5)
        .map(str::to_owned)
        .collect();
    if expected.is_empty() {
        expected.push(a["ranking"][0]["label"].as_str().unwrap().to_owned());
    }
    assert_eq!(labels_of(&a), expected, "{a}");
    // Mixed tickets score billing far above pure technical ones.
    let pure = ok(
        &server,
        &json!({"text": "my Aurora Phone 12 screen is broken", "top_k": 3}),
    );
    assert!(
        score_of(&a, "billing") > score_of(&pure, "billing") + 0.05,
        "{a}\n{pure}"
    );
    // The request's threshold is the cut of `labels`.
    let cut = (score_of(&a, "billing").min(score_of(&a, "technical")) - 0.01) as f32;
    let low = ok(
        &server,
        &json!({"text": text, "top_k": 3, "threshold": cut}),
    );
    let labels = labels_of(&low);
    assert!(
        labels.iter().any(|l| l == "billing") && labels.iter().any(|l| l == "technical"),
        "{low}"
    );
    assert_eq!(low["fallback"], false);
    let none = ok(&server, &json!({"text": text, "threshold": 0.99}));
    assert_eq!(none["labels"], json!([]), "{none}");
    assert_eq!(none["fallback"], true);
    assert_eq!(none["label"], "out_of_scope");
}
