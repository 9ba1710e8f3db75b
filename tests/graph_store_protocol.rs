//! The SPARQL 1.1 Graph Store HTTP Protocol at `/store`, against a real
//! `graft serve`: each method's status codes, formats, and malformed bodies
//! that must leave the store exactly as it was.

mod common;
use common::*;

const G: &str = "http://example.org/graph/g1";
const DOC: &str = "@prefix ex: <http://example.org/> . ex:a ex:p ex:b , ex:c ; ex:label \"A\"@en .";

fn send(
    method: &str,
    server: &Server,
    query: &[(&str, &str)],
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, Option<String>) {
    let mut req = agent()
        .request(method, &server.url("/store"))
        .set("Authorization", &format!("Bearer {TOKEN}"));
    for (k, v) in query {
        req = req.query(k, v);
    }
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    outcome(req.send_bytes(body))
}

/// GET `url` as N-Triples; panics unless 200.
fn n_triples(url: &str) -> String {
    agent()
        .get(url)
        .set("Accept", "application/n-triples")
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

#[test]
fn put_get_head_post_delete_lifecycle() {
    let server = Server::start(&[]);
    // GET and HEAD of an absent graph: 404.
    let (s, body, _) = outcome(agent().get(&server.url("/store")).query("graph", G).call());
    assert_error(s, 404, &body, "graph_not_found");
    assert_eq!(
        outcome(agent().head(&server.url("/store")).query("graph", G).call()).0,
        404
    );
    // PUT creates (201), PUT again replaces (204).
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("graph", G)],
            Some("text/turtle"),
            DOC.as_bytes()
        )
        .0,
        201
    );
    assert_eq!(server.count(), 3);
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("graph", G)],
            Some("text/turtle; charset=utf-8"),
            b"<http://example.org/x> <http://example.org/p> <http://example.org/y> ."
        )
        .0,
        204
    );
    assert_eq!(server.count(), 1);
    // POST adds (204 on an existing graph, 201 on a new one).
    assert_eq!(
        send(
            "POST",
            &server,
            &[("graph", G)],
            Some("text/turtle"),
            DOC.as_bytes()
        )
        .0,
        204
    );
    assert_eq!(server.count(), 4);
    assert_eq!(
        send(
            "POST",
            &server,
            &[("graph", "http://example.org/graph/g2")],
            Some("application/n-triples"),
            b"<http://example.org/q> <http://example.org/p> \"q\" .\n"
        )
        .0,
        201
    );
    // GET in N-Triples has exactly the graph's triples; HEAD says 200 with the type.
    let (s, body, ct) = outcome(
        agent()
            .get(&server.url("/store"))
            .query("graph", G)
            .set("Accept", "application/n-triples")
            .call(),
    );
    assert_eq!((s, ct.as_deref()), (200, Some("application/n-triples")));
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "<http://example.org/a> <http://example.org/label> \"A\"@en .",
            "<http://example.org/a> <http://example.org/p> <http://example.org/b> .",
            "<http://example.org/a> <http://example.org/p> <http://example.org/c> .",
            "<http://example.org/x> <http://example.org/p> <http://example.org/y> .",
        ]
    );
    let head = agent()
        .head(&server.url("/store"))
        .query("graph", G)
        .call()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("Content-Type"), Some("text/turtle"));
    // DELETE: 204, then 404.
    assert_eq!(send("DELETE", &server, &[("graph", G)], None, b"").0, 204);
    let (s, body, _) = send("DELETE", &server, &[("graph", G)], None, b"");
    assert_error(s, 404, &body, "graph_not_found");
    assert_eq!(server.count(), 1);
}

#[test]
fn default_graph_and_whole_dataset() {
    let server = Server::start(&[]);
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("default", "")],
            Some("text/turtle"),
            DOC.as_bytes()
        )
        .0,
        204
    );
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("graph", G)],
            Some("text/turtle"),
            DOC.as_bytes()
        )
        .0,
        201
    );
    // The whole dataset as N-Quads: 3 default + 3 named.
    let (s, body, ct) = outcome(
        agent()
            .get(&server.url("/store"))
            .set("Accept", "application/n-quads")
            .call(),
    );
    assert_eq!((s, ct.as_deref()), (200, Some("application/n-quads")));
    assert_eq!(body.lines().count(), 6);
    assert_eq!(body.lines().filter(|l| l.contains(G)).count(), 3);
    // POST of a dataset document without a graph parameter adds its quads.
    let nq = "<http://example.org/s> <http://example.org/p> <http://example.org/o> <http://example.org/graph/g3> .\n";
    assert_eq!(
        send(
            "POST",
            &server,
            &[],
            Some("application/n-quads"),
            nq.as_bytes()
        )
        .0,
        204
    );
    assert_eq!(server.count(), 7);
    // POST of a graph document without a parameter: a new graph, named by the
    // server, served at its own IRI (direct identification) and by ?graph=.
    let response = agent()
        .post(&server.url("/store"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("Content-Type", "text/turtle")
        .send_string(DOC)
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.header("Location").unwrap().to_owned();
    assert!(
        location.starts_with(&server.url("/store/graphs/")),
        "{location}"
    );
    assert_eq!(server.count(), 10);
    let direct = n_triples(&location);
    assert_eq!(direct.lines().count(), 3);
    let indirect = agent()
        .get(&server.url("/store"))
        .query("graph", &location)
        .set("Accept", "application/n-triples")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(direct, indirect);
    let (s, _, _) = outcome(
        agent()
            .delete(&location)
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call(),
    );
    assert_eq!(s, 204);
    assert_eq!(server.count(), 7);
    let (s, body, _) = outcome(agent().get(&location).call());
    assert_error(s, 404, &body, "graph_not_found");
    assert_eq!(
        send("POST", &server, &[], Some("text/turtle"), DOC.as_bytes()).0,
        201
    );
    // DELETE ?default empties the default graph.
    assert_eq!(
        send("DELETE", &server, &[("default", "")], None, b"").0,
        204
    );
    assert_eq!(server.count(), 7);
}

#[test]
fn behind_a_proxy_new_graphs_are_named_under_the_public_url() {
    let server = Server::start(&["--public-url", "https://kb.example.org/graft/"]);
    // A client-sent X-Forwarded-Host must not rename the graph either.
    let response = agent()
        .post(&server.url("/store"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("Content-Type", "text/turtle")
        .set("X-Forwarded-Host", "attacker.example")
        .send_string(DOC)
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.header("Location").unwrap().to_owned();
    let id = location
        .strip_prefix("https://kb.example.org/graft/store/graphs/")
        .unwrap_or_else(|| panic!("{location}"));
    // The proxy strips the prefix: graft sees /store/graphs/ID and serves
    // the graph named by the public IRI, which ?graph= also reaches.
    let direct = n_triples(&server.url(&format!("/store/graphs/{id}")));
    assert_eq!(direct.lines().count(), 3);
    let (s, indirect, _) = send("GET", &server, &[("graph", &location)], None, b"");
    assert_eq!(s, 200);
    assert!(
        indirect.contains("<http://example.org/c>") && indirect.contains("\"A\"@en"),
        "{indirect}"
    );
    // Relative IRIs sent to the default graph resolve against the public URL.
    let (s, _, _) = send(
        "PUT",
        &server,
        &[("default", "")],
        Some("text/turtle"),
        b"<a> <p> <b> .",
    );
    assert_eq!(s, 204, "the default graph always exists");
    let default = n_triples(&server.url("/store?default"));
    assert!(
        default.contains("<https://kb.example.org/graft/a>"),
        "{default}"
    );
}

#[test]
fn a_bad_public_url_is_refused_before_the_store_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in [
        "kb.example.org",
        "ftp://kb.example.org",
        "https://kb.example.org/?x=1",
    ] {
        let out = graft(
            tmp.path(),
            &["serve", "--bind", "127.0.0.1:0", "--public-url", bad],
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--public-url") && stderr.contains(bad),
            "{stderr}"
        );
    }
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "no store was created"
    );
}

#[test]
fn rdf_formats_in_and_out() {
    let server = Server::start(&[]);
    let json_ld = r#"{"@id": "http://example.org/j", "http://example.org/name": "Jay"}"#;
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("graph", G)],
            Some("application/ld+json"),
            json_ld.as_bytes()
        )
        .0,
        201
    );
    let rdf_xml = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/r"><ex:name>Arr</ex:name></rdf:Description>
</rdf:RDF>"#;
    assert_eq!(
        send(
            "POST",
            &server,
            &[("graph", G)],
            Some("application/rdf+xml"),
            rdf_xml.as_bytes()
        )
        .0,
        204
    );
    let trig_free_turtle = "<http://example.org/t> <http://example.org/name> \"Tee\" .";
    assert_eq!(
        send(
            "POST",
            &server,
            &[("graph", G)],
            Some("application/trig"),
            trig_free_turtle.as_bytes()
        )
        .0,
        204
    );
    let names: serde_json::Value = agent()
        .get(&server.url("/sparql"))
        .query(
            "query",
            "SELECT ?n WHERE { GRAPH ?g { ?s <http://example.org/name> ?n } } ORDER BY ?n",
        )
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let names: Vec<&str> = names["results"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["n"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Arr", "Jay", "Tee"]);
    for accept in [
        "text/turtle",
        "application/ld+json",
        "application/rdf+xml",
        "application/trig",
    ] {
        let (s, body, _) = outcome(
            agent()
                .get(&server.url("/store"))
                .query("graph", G)
                .set("Accept", accept)
                .call(),
        );
        assert_eq!(s, 200, "{accept}");
        assert!(body.contains("Jay"), "{accept}: {body}");
    }
}

#[test]
fn malformed_bodies_leave_the_store_as_it_was() {
    let server = Server::start(&[]);
    assert_eq!(
        send(
            "PUT",
            &server,
            &[("graph", G)],
            Some("text/turtle"),
            DOC.as_bytes()
        )
        .0,
        201
    );
    let before = server.state();
    // Malformed Turtle, on line 2: a PUT must not have cleared the graph first.
    let bad_turtle = "<http://example.org/a> <http://example.org/p> <http://example.org/b> .\n<http://example.org/a> <http://example.org/p> .";
    let (s, body, _) = send(
        "PUT",
        &server,
        &[("graph", G)],
        Some("text/turtle"),
        bad_turtle.as_bytes(),
    );
    let err = assert_error(s, 400, &body, "rdf_syntax");
    assert_eq!(err["line"], 2, "{body}");
    let (s, body, _) = send(
        "POST",
        &server,
        &[("graph", G)],
        Some("text/turtle"),
        bad_turtle.as_bytes(),
    );
    assert_error(s, 400, &body, "rdf_syntax");
    // Malformed JSON-LD and RDF/XML.
    let (s, body, _) = send(
        "POST",
        &server,
        &[("graph", G)],
        Some("application/ld+json"),
        b"{\"@id\": \"http://example.org/j\", ",
    );
    assert_error(s, 400, &body, "rdf_syntax");
    let (s, body, _) = send("POST", &server, &[("graph", G)], Some("application/rdf+xml"), b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description></rdf:RDF>");
    assert_error(s, 400, &body, "rdf_syntax");
    // An invalid IRI inside the document, and as the graph name.
    let (s, body, _) = send(
        "POST",
        &server,
        &[("graph", G)],
        Some("application/n-triples"),
        b"<not an iri> <http://example.org/p> \"x\" .\n",
    );
    assert_error(s, 400, &body, "rdf_syntax");
    let (s, body, _) = send(
        "PUT",
        &server,
        &[("graph", "not an iri")],
        Some("text/turtle"),
        DOC.as_bytes(),
    );
    assert_error(s, 400, &body, "invalid_iri");
    // Invalid UTF-8.
    let (s, body, _) = send(
        "POST",
        &server,
        &[("graph", G)],
        Some("application/n-triples"),
        b"<http://example.org/a> <http://example.org/p> \"\xff\" .\n",
    );
    assert_error(s, 400, &body, "rdf_syntax");
    // Named graphs inside a document bound for one graph.
    let (s, body, _) = send("POST", &server, &[("graph", G)], Some("application/trig"), b"<http://example.org/other> { <http://example.org/a> <http://example.org/p> <http://example.org/b> }");
    assert_error(s, 400, &body, "rdf_syntax");
    // Wrong, missing and non-UTF-8 Content-Type.
    let (s, body, _) = send(
        "PUT",
        &server,
        &[("graph", G)],
        Some("application/pdf"),
        DOC.as_bytes(),
    );
    assert_error(s, 415, &body, "unsupported_media_type");
    let (s, body, _) = send("PUT", &server, &[("graph", G)], None, DOC.as_bytes());
    assert_error(s, 415, &body, "unsupported_media_type");
    let (s, body, _) = send(
        "PUT",
        &server,
        &[("graph", G)],
        Some("text/turtle; charset=latin1"),
        DOC.as_bytes(),
    );
    assert_error(s, 415, &body, "unsupported_media_type");
    // Both ?graph and ?default.
    let (s, body, _) = send(
        "PUT",
        &server,
        &[("graph", G), ("default", "")],
        Some("text/turtle"),
        DOC.as_bytes(),
    );
    assert_error(s, 400, &body, "bad_request");
    // No token.
    let (s, body, _) = outcome(
        agent()
            .delete(&server.url("/store"))
            .query("graph", G)
            .call(),
    );
    assert_error(s, 401, &body, "unauthorized");
    // Unknown endpoints and methods get JSON errors too.
    let (s, body, _) = outcome(agent().get(&server.url("/nope")).call());
    assert_error(s, 404, &body, "not_found");
    let Err(ureq::Error::Status(405, response)) = agent()
        .request("PATCH", &server.url("/store"))
        .query("graph", G)
        .call()
    else {
        panic!("PATCH /store must be 405");
    };
    assert_eq!(
        response.header("Allow"),
        Some("GET, HEAD, PUT, POST, DELETE")
    );
    assert_error(
        405,
        405,
        &response.into_string().unwrap(),
        "method_not_allowed",
    );
    let (s, body, _) = outcome(agent().get(&server.url("/v1/link")).call());
    assert_error(s, 405, &body, "method_not_allowed");
    // Not acceptable.
    let (s, body, _) = outcome(
        agent()
            .get(&server.url("/store"))
            .query("graph", G)
            .set("Accept", "text/csv")
            .call(),
    );
    assert_error(s, 406, &body, "not_acceptable");
    assert_eq!(server.state(), before);
}

#[test]
fn sigterm_flushes_and_a_restart_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &[], Some(TOKEN));
    assert_eq!(put_turtle(&server, G, DOC), 201);
    let (s, _) = update(
        &server,
        "INSERT DATA { <http://example.org/u> <http://example.org/p> 1 }",
    );
    assert_eq!(s, 204);
    let before = server.state();
    assert_eq!(before, (4, 2));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let server = Server::start_in(tmp.path(), &[], Some(TOKEN));
    assert_eq!(server.state(), before);
}

#[test]
fn a_server_killed_mid_put_keeps_committed_data_and_no_half_load() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &[], Some(TOKEN));
    assert_eq!(put_turtle(&server, G, DOC), 201);
    let before = server.state();
    let n = 400_000;
    let mut body = String::with_capacity(n * 80);
    for i in 0..n {
        body.push_str(&format!(
            "<http://example.org/s{i}> <http://example.org/p> \"value {i}\" .\n"
        ));
    }
    let url = server.url("/store");
    let put = std::thread::spawn(move || {
        agent()
            .put(&url)
            .query("graph", "http://example.org/graph/big")
            .set("Content-Type", "application/n-triples")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string(&body)
            .map(|r| r.status())
            .ok()
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL: no flush, no graceful anything
    server.child.wait().unwrap();
    let finished = put.join().unwrap();
    drop(server);
    let server = Server::start_in(tmp.path(), &[], Some(TOKEN));
    let (count, _) = server.state();
    if finished == Some(201) {
        assert_eq!(count, before.0 + n as u64, "an acknowledged PUT is durable");
    } else {
        assert_eq!(
            count, before.0,
            "a PUT cut off by the kill leaves nothing behind"
        );
    }
}
