//! The `graft graph` commands on a real store: loading every format (and
//! gzip), all-or-nothing per file, --lenient, query formats, update, dump,
//! stats, the store lock, and a load killed mid-way.

mod common;
use common::*;
use std::io::Write;

fn stats(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&graft_ok(dir, &["graph", "stats", "--json"])).unwrap()
}

#[test]
fn load_every_format_into_graphs_and_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = tempfile::tempdir().unwrap();
    let f = |name: &str, content: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let nt = "<http://example.org/a> <http://example.org/p> \"nt\" .\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(nt.as_bytes()).unwrap();
    let paths = [
        f("a.nt.gz", &gz.finish().unwrap()),
        f("b.ttl", b"@prefix ex: <http://example.org/> . ex:b ex:p \"ttl\" ."),
        f("c.jsonld", br#"{"@id": "http://example.org/c", "http://example.org/p": "jsonld"}"#),
        f("d.rdf", br#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/d"><ex:p>rdfxml</ex:p></rdf:Description></rdf:RDF>"#),
        f("e.trig", b"<http://example.org/graph/e> { <http://example.org/e> <http://example.org/p> \"trig\" }"),
        f("f.nq", b"<http://example.org/f> <http://example.org/p> \"nq\" <http://example.org/graph/f> .\n"),
    ];
    let mut args = vec!["graph", "load", "--graph", "http://example.org/graph/main"];
    args.extend(paths.iter().map(String::as_str));
    graft_ok(dir, &args);
    let s = stats(dir);
    assert_eq!(s["quads"], 6);
    assert_eq!(s["generation"], 6, "one generation per file");
    let graphs: Vec<(String, u64)> = s["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["graph"].as_str().unwrap_or("default").to_owned(),
                g["triples"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        graphs,
        [
            ("default".to_owned(), 0),
            ("http://example.org/graph/e".to_owned(), 1),
            ("http://example.org/graph/f".to_owned(), 1),
            ("http://example.org/graph/main".to_owned(), 4),
        ]
    );
    assert!(s["size_on_disk_bytes"].as_u64().unwrap() > 0);
    // --format overrides the extension.
    let odd = f(
        "turtle.txt",
        b"<http://example.org/z> <http://example.org/p> \"z\" .",
    );
    graft_ok(dir, &["graph", "load", "--format", "turtle", &odd]);
    assert_eq!(stats(dir)["quads"], 7);
}

#[test]
fn a_broken_file_loads_nothing_unless_lenient() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!(
            "<http://example.org/s{i}> <http://example.org/p> \"{i}\" .\n"
        ));
    }
    text.push_str("<http://example.org/bad> <http://example.org/p> .\n");
    text.push_str("<http://example.org/last> <http://example.org/p> \"last\" .\n");
    let bad = files.path().join("bad.nt");
    std::fs::write(&bad, &text).unwrap();
    let out = graft(dir, &["graph", "load", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.nt") && stderr.contains("nothing from"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1001"),
        "the error names line 1001: {stderr}"
    );
    let s = stats(dir);
    assert_eq!(
        (s["quads"].as_u64(), s["generation"].as_u64()),
        (Some(0), Some(0))
    );
    // Unknown extension, missing file, bad graph IRI: refused, nothing loaded.
    let unknown = files.path().join("data.xyz");
    std::fs::write(&unknown, "x").unwrap();
    assert!(!graft(dir, &["graph", "load", unknown.to_str().unwrap()])
        .status
        .success());
    assert!(!graft(dir, &["graph", "load", "/no/such/file.ttl"])
        .status
        .success());
    let out = graft(
        dir,
        &[
            "graph",
            "load",
            "--graph",
            "not an iri",
            bad.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid IRI"));
    assert_eq!(stats(dir)["quads"], 0);
    // --lenient skips the bad statement and keeps the rest.
    let out = graft(dir, &["graph", "load", "--lenient", bad.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 parse error"));
    assert_eq!(stats(dir)["quads"], 1001);
}

#[test]
fn query_update_and_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    graft_ok(
        dir,
        &[
            "graph",
            "load",
            "--graph",
            "http://example.org/graph/people",
            data("people.ttl").to_str().unwrap(),
        ],
    );
    let q = "SELECT ?n WHERE { GRAPH ?g { ?p <http://xmlns.com/foaf/0.1/name> ?n } } ORDER BY ?n LIMIT 2";
    let csv = graft_ok(dir, &["graph", "query", "--format", "csv", q]);
    assert_eq!(csv.replace("\r\n", "\n").trim_end(), "n\nAlice\nBob");
    let json: serde_json::Value =
        serde_json::from_str(&graft_ok(dir, &["graph", "query", q])).unwrap();
    assert_eq!(json["results"]["bindings"][1]["n"]["value"], "Bob");
    let tsv = graft_ok(dir, &["graph", "query", "--format", "tsv", q]);
    assert!(tsv.starts_with("?n\n\"Alice\""), "{tsv}");
    let xml = graft_ok(dir, &["graph", "query", "--format", "xml", q]);
    assert!(xml.contains("<literal>Alice</literal>"));
    // Union default graph.
    let union = graft_ok(
        dir,
        &[
            "graph",
            "query",
            "--union-default-graph",
            "--format",
            "csv",
            "SELECT (COUNT(*) AS ?c) WHERE { ?s ?p ?o }",
        ],
    );
    assert!(union.contains("22"), "{union}");
    let nt = graft_ok(
        dir,
        &[
            "graph",
            "query",
            "--format",
            "nt",
            "CONSTRUCT { ?p a <http://example.org/P> } WHERE { GRAPH ?g { ?p a ?t } }",
        ],
    );
    assert_eq!(nt.trim().lines().count(), 5);
    // A results format for a graph and an RDF format for solutions are refused.
    assert!(!graft(
        dir,
        &[
            "graph",
            "query",
            "--format",
            "csv",
            "CONSTRUCT WHERE { ?s ?p ?o }"
        ]
    )
    .status
    .success());
    assert!(!graft(dir, &["graph", "query", "--format", "ttl", q])
        .status
        .success());
    // A syntax error names the position.
    let out = graft(dir, &["graph", "query", "SELECT ?x WHERE { ?x }"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Update then dump the graph, and reload the dump elsewhere.
    graft_ok(
        dir,
        &[
            "graph",
            "update",
            "DELETE WHERE { GRAPH ?g { <http://example.org/erin> ?p ?o } }",
        ],
    );
    assert_eq!(stats(dir)["quads"], 19);
    let dump = tmp.path().join("dump.nt");
    graft_ok(
        dir,
        &[
            "graph",
            "dump",
            "--graph",
            "http://example.org/graph/people",
            "--format",
            "ntriples",
            "-o",
            dump.to_str().unwrap(),
        ],
    );
    let other = tempfile::tempdir().unwrap();
    graft_ok(other.path(), &["graph", "load", dump.to_str().unwrap()]);
    assert_eq!(stats(other.path())["quads"], 19);
    let nq = graft_ok(dir, &["graph", "dump", "--format", "nquads"]);
    assert_eq!(nq.lines().count(), 19);
    assert!(
        !graft(dir, &["graph", "dump", "--format", "turtle"])
            .status
            .success(),
        "a whole dataset needs a quad format"
    );
    // LOAD is refused without --allow-federation.
    let out = graft(dir, &["graph", "update", "LOAD <http://127.0.0.1:9/x.ttl>"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-federation"));
}

#[test]
fn a_second_process_is_told_the_store_is_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let _server = Server::start_in(tmp.path(), &[], None);
    let out = graft(tmp.path(), &["graph", "stats"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
}

#[test]
fn a_load_killed_midway_leaves_nothing_half_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    graft_ok(
        dir,
        &["graph", "load", data("people.ttl").to_str().unwrap()],
    );
    let big = tmp.path().join("big.nt");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    let n = 1_500_000;
    for i in 0..n {
        writeln!(
            w,
            "<http://example.org/s{i}> <http://example.org/p{}> \"value {i}\" .",
            i % 7
        )
        .unwrap();
    }
    w.flush().unwrap();
    let mut child = std::process::Command::new(graft_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["graph", "load", big.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    let s = stats(dir);
    let quads = s["quads"].as_u64().unwrap();
    if finished_early {
        assert_eq!(quads, 22 + n);
    } else {
        assert_eq!(
            quads, 22,
            "the killed load must leave no partial file behind"
        );
    }
}
