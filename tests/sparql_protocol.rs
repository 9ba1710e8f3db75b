//! The SPARQL 1.1 Protocol at `/sparql`, against a real `graft serve` on a
//! loopback port: every way to send a query or an update, content
//! negotiation, dataset parameters, and each bad input with the store checked
//! unchanged afterwards.

mod common;
use common::*;
use std::io::{Read, Write};

const PEOPLE: &str = "http://example.org/graph/people";

fn people_server(extra: &[&str]) -> Server {
    let server = Server::start(extra);
    let ttl = std::fs::read_to_string(data("people.ttl")).unwrap();
    assert_eq!(put_turtle(&server, PEOPLE, &ttl), 201);
    server
}

const NAMES: &str =
    "SELECT ?name WHERE { GRAPH ?g { ?p <http://xmlns.com/foaf/0.1/name> ?name } } ORDER BY ?name";

fn names(json: &serde_json::Value) -> Vec<String> {
    json["results"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"]["value"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn query_by_get_post_and_form_agree() {
    let server = people_server(&[]);
    let expected = ["Alice", "Bob", "Carol", "Dave", "Erin"];
    assert_eq!(names(&query_json(&server, NAMES)), expected);

    let direct: serde_json::Value = agent()
        .post(&server.url("/sparql"))
        .set("Content-Type", "application/sparql-query")
        .send_string(NAMES)
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(names(&direct), expected);

    let form: serde_json::Value = agent()
        .post(&server.url("/sparql"))
        .send_form(&[("query", NAMES)])
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(names(&form), expected);

    let ask: serde_json::Value = agent()
        .get(&server.url("/sparql"))
        .query(
            "query",
            "ASK { GRAPH ?g { <http://example.org/alice> ?p ?o } }",
        )
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(ask["boolean"], true);
}

#[test]
fn select_results_in_every_negotiated_format() {
    let server = people_server(&[]);
    let q = "SELECT ?name WHERE { GRAPH ?g { <http://example.org/alice> <http://xmlns.com/foaf/0.1/name> ?name } }";
    let get = |accept: &str| {
        outcome(
            agent()
                .get(&server.url("/sparql"))
                .query("query", q)
                .set("Accept", accept)
                .call(),
        )
    };
    let (s, body, ct) = get("text/csv");
    assert_eq!((s, ct.as_deref()), (200, Some("text/csv; charset=utf-8")));
    assert_eq!(body.replace("\r\n", "\n"), "name\nAlice\n");
    let (s, body, ct) = get("text/tab-separated-values");
    assert_eq!(
        (s, ct.as_deref()),
        (200, Some("text/tab-separated-values; charset=utf-8"))
    );
    assert_eq!(body, "?name\n\"Alice\"\n");
    let (s, body, ct) = get("application/sparql-results+xml");
    assert_eq!(
        (s, ct.as_deref()),
        (200, Some("application/sparql-results+xml"))
    );
    assert!(body.contains("<literal>Alice</literal>"), "{body}");
    let (s, body, _) = get("text/csv;q=0.1, application/sparql-results+json");
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["results"]["bindings"][0]["name"]
            ["value"],
        "Alice"
    );
    let (s, body, _) = get("image/png");
    assert_error(s, 406, &body, "not_acceptable");
}

#[test]
fn construct_results_in_rdf_formats() {
    let server = people_server(&[]);
    let q = "CONSTRUCT { ?p <http://xmlns.com/foaf/0.1/name> ?n } WHERE { GRAPH ?g { ?p <http://xmlns.com/foaf/0.1/name> ?n } }";
    for (accept, needle) in [
        (
            "application/n-triples",
            "<http://example.org/alice> <http://xmlns.com/foaf/0.1/name> \"Alice\" .",
        ),
        ("text/turtle", "\"Alice\""),
        ("application/ld+json", "\"@value\""),
        ("application/rdf+xml", "rdf:RDF"),
    ] {
        let (s, body, ct) = outcome(
            agent()
                .get(&server.url("/sparql"))
                .query("query", q)
                .set("Accept", accept)
                .call(),
        );
        assert_eq!(s, 200, "{accept}: {body}");
        assert!(ct.unwrap().starts_with(accept), "{accept}");
        assert!(body.contains(needle), "{accept}: {body}");
    }
    let n_triples = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", q)
            .set("Accept", "application/n-triples")
            .call(),
    )
    .1;
    assert_eq!(n_triples.lines().count(), 5);
    // A results format cannot hold a graph.
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", q)
            .set("Accept", "text/csv")
            .call(),
    );
    assert_error(s, 406, &body, "not_acceptable");
}

#[test]
fn dataset_parameters_choose_the_graphs() {
    let server = people_server(&[]);
    assert_eq!(
        put_turtle(
            &server,
            "http://example.org/graph/other",
            "<http://example.org/zed> <http://xmlns.com/foaf/0.1/name> \"Zed\" ."
        ),
        201
    );
    let q = "SELECT ?name WHERE { ?p <http://xmlns.com/foaf/0.1/name> ?name } ORDER BY ?name";
    // The store's default graph is empty.
    assert!(names(&query_json(&server, q)).is_empty());
    let with_default = |uris: &[&str]| {
        let mut req = agent().get(&server.url("/sparql")).query("query", q);
        for u in uris {
            req = req.query("default-graph-uri", u);
        }
        names(&req.call().unwrap().into_json().unwrap())
    };
    assert_eq!(with_default(&["http://example.org/graph/other"]), ["Zed"]);
    assert_eq!(
        with_default(&[PEOPLE, "http://example.org/graph/other"]).len(),
        6
    );
    // named-graph-uri restricts GRAPH ?g.
    let named: serde_json::Value = agent()
        .get(&server.url("/sparql"))
        .query("query", NAMES)
        .query("named-graph-uri", "http://example.org/graph/other")
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(names(&named), ["Zed"]);
    // --union-default-graph is off here; a bad graph IRI is a 400.
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", q)
            .query("default-graph-uri", "not an iri")
            .call(),
    );
    assert_error(s, 400, &body, "invalid_iri");
}

#[test]
fn union_default_graph_option() {
    let server = people_server(&["--union-default-graph"]);
    let q = "SELECT ?name WHERE { ?p <http://xmlns.com/foaf/0.1/name> ?name } ORDER BY ?name";
    assert_eq!(names(&query_json(&server, q)).len(), 5);
}

#[test]
fn updates_direct_and_form_bump_the_generation() {
    let server = people_server(&[]);
    let (count, generation) = server.state();
    let (s, body) = update(&server, "INSERT DATA { GRAPH <http://example.org/graph/people> { <http://example.org/frank> <http://xmlns.com/foaf/0.1/name> \"Frank\" } }");
    assert_eq!(s, 204, "{body}");
    assert_eq!(server.state(), (count + 1, generation + 1));
    let (s, body, _) = outcome(
        agent()
            .post(&server.url("/sparql"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_form(&[(
                "update",
                "DELETE WHERE { GRAPH ?g { <http://example.org/frank> ?p ?o } }",
            )]),
    );
    assert_eq!(s, 204, "{body}");
    assert_eq!(server.state(), (count, generation + 2));
    // using-graph-uri sets the WHERE dataset of the update.
    let (s, _, _) = outcome(
        agent()
            .post(&server.url("/sparql"))
            .query("using-graph-uri", PEOPLE)
            .set("Content-Type", "application/sparql-update")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string("INSERT { GRAPH <http://example.org/graph/copy> { ?p a <http://example.org/Named> } } WHERE { ?p <http://xmlns.com/foaf/0.1/name> ?n }"),
    );
    assert_eq!(s, 204);
    assert_eq!(server.count(), count + 5);
}

#[test]
fn syntax_errors_give_400_with_line_and_column() {
    let server = people_server(&[]);
    let before = server.state();
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", "SELECT ?s\nWHERE { ?s ?p }")
            .call(),
    );
    let err = assert_error(s, 400, &body, "sparql_syntax");
    assert_eq!(err["line"], 2, "{body}");
    assert!(err["column"].as_u64().unwrap() > 1, "{body}");
    let (s, body) = update(
        &server,
        "INSERT DATA { <http://example.org/a> <http://example.org/b> }",
    );
    let err = assert_error(s, 400, &body, "sparql_syntax");
    assert_eq!(err["line"], 1);
    assert_eq!(server.state(), before);
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let server = people_server(&[]);
    let before = server.state();
    let url = server.url("/sparql");
    // No query at all.
    let (s, body, _) = outcome(agent().get(&url).call());
    assert_error(s, 400, &body, "missing_query");
    // Wrong and missing Content-Type.
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .set("Content-Type", "text/plain")
            .send_string("ASK {}"),
    );
    assert_error(s, 415, &body, "unsupported_media_type");
    let (s, body, _) = outcome(agent().post(&url).send_bytes(b"ASK {}"));
    assert_error(s, 415, &body, "unsupported_media_type");
    // Invalid UTF-8 in a query and in an update.
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .set("Content-Type", "application/sparql-query")
            .send_bytes(b"ASK { ?s ?p \"\xff\xfe\" }"),
    );
    assert_error(s, 400, &body, "invalid_utf8");
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .set("Content-Type", "application/sparql-update")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_bytes(
                b"INSERT DATA { <http://example.org/a> <http://example.org/b> \"\xc3\x28\" }",
            ),
    );
    assert_error(s, 400, &body, "invalid_utf8");
    // Both query and update in one form.
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .send_form(&[("query", "ASK {}"), ("update", "CLEAR ALL")]),
    );
    assert_error(s, 400, &body, "bad_request");
    // An update by GET is not an update.
    let (s, body, _) = outcome(agent().get(&url).query("update", "CLEAR ALL").call());
    assert_error(s, 400, &body, "bad_request");
    // CREATE of an existing graph is the query's fault.
    let (s, body) = update(&server, &format!("CREATE GRAPH <{PEOPLE}>"));
    assert_error(s, 400, &body, "sparql_evaluation");
    assert_eq!(server.state(), before);
}

#[test]
fn writes_need_the_token() {
    let server = people_server(&[]);
    let before = server.state();
    let url = server.url("/sparql");
    let clear = "CLEAR ALL";
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .set("Content-Type", "application/sparql-update")
            .send_string(clear),
    );
    assert_error(s, 401, &body, "unauthorized");
    let (s, body, _) = outcome(
        agent()
            .post(&url)
            .set("Content-Type", "application/sparql-update")
            .set("Authorization", "Bearer wrong")
            .send_string(clear),
    );
    assert_error(s, 401, &body, "unauthorized");
    let (s, body, _) = outcome(agent().post(&url).send_form(&[("update", clear)]));
    assert_error(s, 401, &body, "unauthorized");
    assert_eq!(server.state(), before);
}

#[test]
fn without_a_token_writes_are_disabled_and_reads_work() {
    let tmp = tempfile::tempdir().unwrap();
    graft_ok(
        tmp.path(),
        &["graph", "load", data("people.ttl").to_str().unwrap()],
    );
    let server = Server::start_in(tmp.path(), &[], None);
    let before = server.state();
    assert_eq!(before.0, 22);
    let (s, body) = update(&server, "CLEAR ALL");
    assert_error(s, 403, &body, "writes_disabled");
    assert_eq!(server.state(), before);
}

#[test]
fn read_only_refuses_every_write() {
    let tmp = tempfile::tempdir().unwrap();
    graft_ok(
        tmp.path(),
        &["graph", "load", data("people.ttl").to_str().unwrap()],
    );
    let server = Server::start_in(tmp.path(), &["--read-only"], Some(TOKEN));
    let before = server.state();
    let (s, body) = update(&server, "CLEAR ALL");
    assert_error(s, 403, &body, "read_only");
    let (s, body, _) = outcome(
        agent()
            .delete(&server.url("/store"))
            .query("default", "")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    );
    assert_error(s, 403, &body, "read_only");
    assert_eq!(
        put_turtle(
            &server,
            PEOPLE,
            "<http://example.org/a> <http://example.org/b> <http://example.org/c> ."
        ),
        403
    );
    assert_eq!(server.state(), before);
}

#[test]
fn a_query_that_runs_forever_is_cancelled_with_503() {
    let server = people_server(&["--query-timeout-s", "2"]);
    // 22^5 ≈ 5 million combinations, each re-joined: far beyond 2 s, and no output until the end.
    let forever = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g1 { ?a ?b ?c } GRAPH ?g2 { ?d ?e ?f } GRAPH ?g3 { ?h ?i ?j } GRAPH ?g4 { ?k ?l ?m } GRAPH ?g5 { ?n1 ?o ?p } GRAPH ?g6 { ?q ?r ?s } }";
    let start = std::time::Instant::now();
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", forever)
            .call(),
    );
    let elapsed = start.elapsed();
    assert_error(s, 503, &body, "timeout");
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    // The server still answers, and an update that runs forever is cancelled too, committing nothing.
    let before = server.state();
    let (s, body) = update(&server, "INSERT { GRAPH <http://example.org/g> { ?a <http://example.org/p> ?s } } WHERE { GRAPH ?g1 { ?a ?b ?c } GRAPH ?g2 { ?d ?e ?f } GRAPH ?g3 { ?h ?i ?j } GRAPH ?g4 { ?k ?l ?m } GRAPH ?g5 { ?n1 ?o ?p } GRAPH ?g6 { ?q ?r ?s } }");
    assert_error(s, 503, &body, "timeout");
    assert_eq!(server.state(), before);
}

#[test]
fn service_and_load_are_refused_unless_enabled() {
    let server = people_server(&[]);
    let before = server.state();
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query(
                "query",
                "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
            )
            .call(),
    );
    assert_error(s, 403, &body, "forbidden");
    let (s, body) = update(
        &server,
        "LOAD <http://127.0.0.1:9/data.ttl> INTO GRAPH <http://example.org/loaded>",
    );
    assert_error(s, 403, &body, "forbidden");
    assert_eq!(server.state(), before);
}

#[test]
fn bodies_over_the_limit_get_413_unread() {
    let server = people_server(&["--max-body-mb", "1"]);
    let before = server.state();
    let big = format!("ASK {{ ?s ?p \"{}\" }}", "x".repeat(2 << 20));
    let (s, body, _) = outcome(
        agent()
            .post(&server.url("/sparql"))
            .set("Content-Type", "application/sparql-query")
            .send_string(&big),
    );
    assert_error(s, 413, &body, "payload_too_large");
    // A client announcing gigabytes is answered before it sends a byte of them.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        tcp,
        "PUT /store?graph=http://example.org/huge HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/n-triples\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 5000000000\r\n\r\n"
    )
    .unwrap();
    let mut response = vec![0; 4096];
    let n = tcp.read(&mut response).unwrap();
    let head = String::from_utf8_lossy(&response[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    drop(tcp);
    assert_eq!(server.state(), before);
}

#[test]
fn health_reports_generation_and_triples() {
    let server = Server::start(&[]);
    let health = server.health();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["generation"], 0);
    assert_eq!(health["triples"], 0);
    let ttl = std::fs::read_to_string(data("people.ttl")).unwrap();
    assert_eq!(put_turtle(&server, PEOPLE, &ttl), 201);
    let health = server.health();
    assert_eq!(health["generation"], 1);
    assert_eq!(health["triples"], 22);
}

#[test]
fn cors_is_off_by_default_and_on_when_asked() {
    let server = people_server(&[]);
    let response = agent()
        .get(&server.url("/health"))
        .set("Origin", "https://evil.example")
        .call()
        .unwrap();
    assert_eq!(response.header("Access-Control-Allow-Origin"), None);
    let server = Server::start(&["--cors-origin", "https://app.example"]);
    let response = agent()
        .get(&server.url("/health"))
        .set("Origin", "https://app.example")
        .call()
        .unwrap();
    assert_eq!(
        response.header("Access-Control-Allow-Origin"),
        Some("https://app.example")
    );
}

#[test]
fn federation_works_when_enabled() {
    // One graft holds the people; another, with --allow-federation, asks it over SERVICE.
    let remote = people_server(&[]);
    let local = Server::start(&["--allow-federation"]);
    let q = format!(
        "SELECT ?name WHERE {{ SERVICE <{}/sparql> {{ GRAPH ?g {{ ?p <http://xmlns.com/foaf/0.1/name> ?name }} }} }} ORDER BY ?name",
        remote.base
    );
    assert_eq!(
        names(&query_json(&local, &q)),
        ["Alice", "Bob", "Carol", "Dave", "Erin"]
    );
    // LOAD <url> fetches an RDF document into the store.
    let (s, body) = update(
        &local,
        &format!(
            "LOAD <{}/store?graph={PEOPLE}> INTO GRAPH <http://example.org/copied>",
            remote.base
        ),
    );
    assert_eq!(s, 204, "{body}");
    assert_eq!(local.count(), 22);
}

/// A query or a document nested thousands deep used to overflow the
/// parser's stack and abort the whole server; now it is a 400 and the
/// server goes on.
#[test]
fn deeply_nested_queries_and_documents_are_refused_not_fatal() {
    let server = Server::start(&[]);
    let deep = format!("ASK {}{}", "{".repeat(1200), "}".repeat(1200));
    let (status, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", &deep)
            .call(),
    );
    let e = assert_error(status, 400, &body, "sparql_syntax");
    assert!(e["error"].as_str().unwrap().contains("levels deep"), "{e}");
    assert_eq!(e["line"], 1);
    let parens = format!(
        "ASK {{ FILTER({}1{}) }}",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    let (status, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", &parens)
            .call(),
    );
    assert_error(status, 400, &body, "sparql_syntax");
    let deep_update = format!(
        "INSERT DATA {{ GRAPH <{EX}g> {{ <{EX}s> <{EX}p> {}<{EX}o>{} }} }}",
        "(".repeat(2000),
        ")".repeat(2000)
    );
    let (status, body) = update(&server, &deep_update);
    assert_error(status, 400, &body, "sparql_syntax");
    let jsonld = format!(
        "{}{{\"@id\": \"{EX}x\"}}{}",
        "[".repeat(2000),
        "]".repeat(2000)
    );
    let (status, body, _) = outcome(
        agent()
            .put(&server.url("/store"))
            .query("graph", &format!("{EX}g"))
            .set("Content-Type", "application/ld+json")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string(&jsonld),
    );
    assert_error(status, 400, &body, "rdf_syntax");
    let turtle = format!(
        "<{EX}s> <{EX}p> {}<{EX}o>{} .",
        "[ <p> ".repeat(2000),
        " ]".repeat(2000)
    );
    assert_eq!(put_turtle(&server, &format!("{EX}g"), &turtle), 400);
    // Nesting a real query might use still works, and the server is alive.
    let ok_depth = format!("ASK {{ FILTER({}1{}) }}", "(".repeat(200), ")".repeat(200));
    let (status, body, _) = outcome(
        agent()
            .get(&server.url("/sparql"))
            .query("query", &ok_depth)
            .call(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.generation(), 0);
}
