//! Content negotiation: picks the response format from an `Accept` header
//! (RFC 9110, section 12.5.1: media ranges with `q` weights).

use super::ApiError;
use crate::graph::format::{RDF_FORMATS, RESULTS_FORMATS};
use crate::graph::{QueryForm, RdfFormat, ResultFormat};
use actix_web::http::StatusCode;

/// One media range of an `Accept` header.
struct MediaRange {
    kind: String,
    subtype: String,
    q: f32,
}

fn parse_accept(accept: &str) -> Vec<MediaRange> {
    let mut ranges: Vec<MediaRange> = accept
        .split(',')
        .filter_map(|part| {
            let mut params = part.split(';');
            let (kind, subtype) = params.next()?.trim().split_once('/')?;
            let mut q = 1.0;
            for p in params {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            Some(MediaRange {
                kind: kind.trim().to_ascii_lowercase(),
                subtype: subtype.trim().to_ascii_lowercase(),
                q,
            })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    // Stable: among equal weights the client's order wins; exact ranges beat wildcards.
    ranges.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| (a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    ranges
}

/// Picks the first of `offers` (media types, server order = preference for
/// wildcards) that the header accepts. A missing or empty header accepts the first offer.
fn pick<'a, T: Copy>(accept: Option<&str>, offers: &'a [(&'a str, T)]) -> Option<T> {
    let accept = accept.map(str::trim).filter(|a| !a.is_empty());
    let Some(accept) = accept else {
        return offers.first().map(|o| o.1);
    };
    for range in parse_accept(accept) {
        for (media, value) in offers {
            let essence = media.split(';').next().unwrap_or_default().trim();
            let (kind, subtype) = essence.split_once('/').unwrap_or((essence, ""));
            let kind_ok = range.kind == "*" || range.kind == kind;
            let subtype_ok = range.subtype == "*" || range.subtype == subtype;
            if kind_ok && subtype_ok {
                return Some(*value);
            }
        }
    }
    None
}

fn not_acceptable(what: &str, offers: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        format!(
            "no acceptable format for {what}; available: {}",
            offers.join(", ")
        ),
    )
}

/// The media types an RDF format answers to (its main one and common aliases).
fn rdf_offers(formats: &[RdfFormat]) -> Vec<(&'static str, RdfFormat)> {
    let mut offers: Vec<(&'static str, RdfFormat)> =
        formats.iter().map(|f| (f.media_type(), *f)).collect();
    if formats.contains(&RdfFormat::RdfXml) {
        offers.push(("application/xml", RdfFormat::RdfXml));
    }
    if let Some(jsonld) = formats
        .iter()
        .find(|f| matches!(f, RdfFormat::JsonLd { .. }))
    {
        offers.push(("application/json", *jsonld));
    }
    offers
}

/// The result format for a query of `form` given the `Accept` header: SPARQL
/// results JSON by default for SELECT/ASK, Turtle for CONSTRUCT/DESCRIBE.
///
/// # Errors
/// 406 `not_acceptable` listing what is available.
pub fn query_result_format(
    accept: Option<&str>,
    form: QueryForm,
) -> Result<ResultFormat, ApiError> {
    let offers: Vec<(&str, ResultFormat)> = if form.returns_graph() {
        rdf_offers(&RDF_FORMATS)
            .into_iter()
            .map(|(m, f)| (m, ResultFormat::Rdf(f)))
            .collect()
    } else {
        let mut offers: Vec<(&str, ResultFormat)> = RESULTS_FORMATS
            .iter()
            .map(|f| (f.media_type(), ResultFormat::Results(*f)))
            .collect();
        offers.push((
            "application/json",
            ResultFormat::Results(RESULTS_FORMATS[0]),
        ));
        offers.push(("application/xml", ResultFormat::Results(RESULTS_FORMATS[1])));
        offers
    };
    pick(accept, &offers).ok_or_else(|| {
        not_acceptable(
            "these query results",
            &offers.iter().map(|o| o.0).collect::<Vec<_>>(),
        )
    })
}

/// The RDF format for a Graph Store GET: Turtle by default.
///
/// # Errors
/// 406 `not_acceptable`.
pub fn rdf_format(accept: Option<&str>, formats: &[RdfFormat]) -> Result<RdfFormat, ApiError> {
    let offers = rdf_offers(formats);
    pick(accept, &offers).ok_or_else(|| {
        not_acceptable(
            "this graph",
            &offers.iter().map(|o| o.0).collect::<Vec<_>>(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::QueryResultsFormat;

    #[test]
    fn weights_wildcards_and_defaults() {
        let r = |a| query_result_format(a, QueryForm::Select).unwrap();
        assert_eq!(r(None), ResultFormat::Results(QueryResultsFormat::Json));
        assert_eq!(
            r(Some("text/csv")),
            ResultFormat::Results(QueryResultsFormat::Csv)
        );
        assert_eq!(
            r(Some("text/csv;q=0.5, application/sparql-results+xml")),
            ResultFormat::Results(QueryResultsFormat::Xml)
        );
        assert_eq!(
            r(Some("*/*")),
            ResultFormat::Results(QueryResultsFormat::Json)
        );
        assert_eq!(
            r(Some("text/*;q=0.9, application/json;q=0.1")),
            ResultFormat::Results(QueryResultsFormat::Csv)
        );
        let e = query_result_format(Some("image/png"), QueryForm::Select).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            query_result_format(Some("application/n-triples"), QueryForm::Construct).unwrap(),
            ResultFormat::Rdf(RdfFormat::NTriples)
        );
        assert_eq!(
            query_result_format(None, QueryForm::Describe).unwrap(),
            ResultFormat::Rdf(RdfFormat::Turtle)
        );
    }
}
