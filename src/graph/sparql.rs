//! SPARQL 1.1 query and update over the store, with the protections a public
//! endpoint needs: cancellation (for time limits), `SERVICE` and `LOAD` (which
//! make the server fetch arbitrary URLs) refused unless allowed, and the
//! protocol's dataset parameters (`default-graph-uri`, `named-graph-uri`,
//! `using-graph-uri`, `using-named-graph-uri`).

use super::{parse_iri, GraphError, GraphStore};
use oxigraph::io::{RdfFormat, RdfSerializer};
use oxigraph::model::{GraphName, NamedOrBlankNode};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};
use oxigraph::sparql::{
    CancellationToken, PreparedSparqlQuery, QueryEvaluationError, QueryResults, SparqlEvaluator,
    UpdateEvaluationError,
};
use spargebra::{GraphUpdateOperation, SparqlParser};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// Cancellation of a write (a SPARQL update) with a definite outcome.
///
/// Cancelling stops the update's evaluation at oxigraph's next check, which
/// can come late for some plans (a hash join materialising a cross product
/// does not read the store). [`WriteCancellation::abandon`] settles the
/// outcome at once: either the commit had already begun (the update will
/// land) or it never will.
#[derive(Default)]
pub struct WriteCancellation {
    token: CancellationToken,
    /// 0 = running, 1 = committing, 2 = abandoned.
    state: AtomicU8,
}

impl WriteCancellation {
    /// A fresh, running operation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the evaluation to stop (it may take a while to notice).
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Cancels and forbids the commit. Returns `false` when the commit had
    /// already begun: the write will then land, and the caller should wait for it.
    pub fn abandon(&self) -> bool {
        self.token.cancel();
        match self
            .state
            .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(current) => current == 2,
        }
    }

    /// Claims the right to commit; `false` once cancelled or abandoned.
    fn begin_commit(&self) -> bool {
        !self.token.is_cancelled()
            && self
                .state
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// Options shared by queries and updates.
#[derive(Debug, Clone, Default)]
pub struct SparqlOptions {
    /// Allow `SERVICE` (federated query) and `LOAD <url>`: both make graft
    /// fetch URLs chosen by the client. Off by default.
    pub allow_federation: bool,
    /// Make the default graph the union of all graphs (when the request names
    /// no dataset), as `oxigraph serve --union-default-graph` does.
    pub union_default_graph: bool,
    /// The time limit reported in [`GraphError::Timeout`] when the operation's
    /// cancellation token fires. The caller arranges the cancellation.
    pub timeout: Option<Duration>,
}

/// A SPARQL query with the SPARQL 1.1 Protocol's dataset parameters.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// The query text.
    pub query: String,
    /// `default-graph-uri` values: the union of these graphs is the default graph.
    pub default_graph_uris: Vec<String>,
    /// `named-graph-uri` values: the only named graphs the query sees.
    pub named_graph_uris: Vec<String>,
    /// The base IRI for relative IRIs in the query.
    pub base_iri: Option<String>,
}

/// A SPARQL update with the protocol's `using-graph-uri` / `using-named-graph-uri`.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// The update text.
    pub update: String,
    /// `using-graph-uri` values.
    pub using_graph_uris: Vec<String>,
    /// `using-named-graph-uri` values.
    pub using_named_graph_uris: Vec<String>,
    /// The base IRI for relative IRIs in the update.
    pub base_iri: Option<String>,
}

/// The four SPARQL query forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryForm {
    Select,
    Ask,
    Construct,
    Describe,
}

impl QueryForm {
    /// Whether the results are an RDF graph (CONSTRUCT, DESCRIBE) rather than
    /// solutions or a boolean (SELECT, ASK).
    pub fn returns_graph(self) -> bool {
        matches!(self, Self::Construct | Self::Describe)
    }
}

/// How to serialize query results: a SPARQL results format for SELECT/ASK,
/// an RDF format for CONSTRUCT/DESCRIBE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResultFormat {
    Results(QueryResultsFormat),
    Rdf(RdfFormat),
}

impl ResultFormat {
    /// The media type to send as `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Results(f) => f.media_type(),
            Self::Rdf(f) => f.media_type(),
        }
    }
}

/// A parsed query, ready to run; cancel it through [`PreparedQuery::cancellation_token`].
pub struct PreparedQuery {
    form: QueryForm,
    prepared: PreparedSparqlQuery,
    token: CancellationToken,
    timeout: Option<Duration>,
}

impl PreparedQuery {
    /// The query form, to choose a result format before running.
    pub fn form(&self) -> QueryForm {
        self.form
    }

    /// A handle that cancels the running query (from any thread): evaluation
    /// stops at its next check and returns [`GraphError::Timeout`].
    pub fn cancellation_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs the query on `store` and returns oxigraph's results to iterate.
    ///
    /// # Errors
    /// As [`PreparedQuery::execute_to`], before any result is read.
    pub fn execute_raw(self, store: &GraphStore) -> Result<QueryResults<'static>, GraphError> {
        let token = self.token.clone();
        let timeout = self.timeout;
        self.prepared
            .on_store(store.store())
            .execute()
            .map_err(|e| query_error(e, &token, timeout))
    }

    /// Runs the query on `store` and streams the results to `writer` in `format`.
    ///
    /// # Errors
    /// [`GraphError::UnsupportedFormat`] when `format` does not fit the query
    /// form; [`GraphError::Timeout`] when cancelled; [`GraphError::Forbidden`]
    /// for a `SERVICE` call without federation; [`GraphError::Evaluation`] or
    /// `Storage` otherwise; [`GraphError::Io`] when the writer fails (e.g. the
    /// client went away).
    pub fn execute_to<W: Write>(
        self,
        store: &GraphStore,
        format: ResultFormat,
        writer: W,
    ) -> Result<W, GraphError> {
        let token = self.token.clone();
        let timeout = self.timeout;
        let eval_err = |e: QueryEvaluationError| query_error(e, &token, timeout);
        let results = self
            .prepared
            .on_store(store.store())
            .execute()
            .map_err(eval_err)?;
        let io = |e| GraphError::io(None, e);
        match (results, format) {
            (QueryResults::Boolean(value), ResultFormat::Results(f)) => {
                QueryResultsSerializer::from_format(f)
                    .serialize_boolean_to_writer(writer, value)
                    .map_err(io)
            }
            (QueryResults::Solutions(solutions), ResultFormat::Results(f)) => {
                let mut serializer = QueryResultsSerializer::from_format(f)
                    .serialize_solutions_to_writer(writer, solutions.variables().to_vec())
                    .map_err(io)?;
                for solution in solutions {
                    serializer
                        .serialize(&solution.map_err(eval_err)?)
                        .map_err(io)?;
                }
                serializer.finish().map_err(io)
            }
            (QueryResults::Graph(triples), ResultFormat::Rdf(f)) => {
                let mut serializer = RdfSerializer::from_format(f).for_writer(writer);
                for triple in triples {
                    serializer
                        .serialize_triple(&triple.map_err(eval_err)?)
                        .map_err(io)?;
                }
                serializer.finish().map_err(io)
            }
            (QueryResults::Graph(_), ResultFormat::Results(f)) => {
                Err(GraphError::UnsupportedFormat(format!(
                    "{} cannot hold the RDF graph a CONSTRUCT or DESCRIBE returns",
                    f.name()
                )))
            }
            (_, ResultFormat::Rdf(f)) => Err(GraphError::UnsupportedFormat(format!(
                "{} cannot hold SELECT or ASK results",
                f.name()
            ))),
        }
    }
}

impl GraphStore {
    /// Parses `request` and binds its dataset, ready to run.
    ///
    /// # Errors
    /// [`GraphError::SparqlSyntax`] with line and column; [`GraphError::InvalidIri`]
    /// for a bad graph IRI or base IRI.
    pub fn prepare_query(
        &self,
        request: &QueryRequest,
        options: &SparqlOptions,
    ) -> Result<PreparedQuery, GraphError> {
        let mut parser = SparqlParser::new();
        if let Some(base) = &request.base_iri {
            parser = parser
                .with_base_iri(base.as_str())
                .map_err(|e| super::store::invalid_iri(base, e))?;
        }
        super::nesting::check_sparql(&request.query)?;
        let query = parser
            .parse_query(&request.query)
            .map_err(|e| GraphError::from_sparql_syntax(&e))?;
        let form = match &query {
            spargebra::Query::Select { .. } => QueryForm::Select,
            spargebra::Query::Ask { .. } => QueryForm::Ask,
            spargebra::Query::Construct { .. } => QueryForm::Construct,
            spargebra::Query::Describe { .. } => QueryForm::Describe,
        };
        let has_from = match &query {
            spargebra::Query::Select { dataset, .. }
            | spargebra::Query::Ask { dataset, .. }
            | spargebra::Query::Construct { dataset, .. }
            | spargebra::Query::Describe { dataset, .. } => dataset.is_some(),
        };
        let default_graphs = graph_names(&request.default_graph_uris)?;
        let named_graphs = graph_names(&request.named_graph_uris)?;
        let token = CancellationToken::new();
        let mut prepared = evaluator(options, &token).for_query(query);
        let dataset = prepared.dataset_mut();
        // The protocol's dataset parameters override FROM / FROM NAMED (SPARQL 1.1 Protocol, 2.1.4).
        if !default_graphs.is_empty() || !named_graphs.is_empty() {
            dataset.set_default_graph(
                default_graphs
                    .into_iter()
                    .map(GraphName::NamedNode)
                    .collect(),
            );
            dataset.set_available_named_graphs(
                named_graphs
                    .into_iter()
                    .map(NamedOrBlankNode::NamedNode)
                    .collect(),
            );
        } else if options.union_default_graph && !has_from {
            dataset.set_default_graph_as_union();
        }
        Ok(PreparedQuery {
            form,
            prepared,
            token,
            timeout: options.timeout,
        })
    }

    /// Parses and runs a SPARQL update as one committed write (it bumps the
    /// generation). `cancellation` cancels it from another thread; a
    /// cancelled update is never committed.
    ///
    /// # Errors
    /// [`GraphError::SparqlSyntax`]; [`GraphError::Forbidden`] for `LOAD` or
    /// `SERVICE` without federation; [`GraphError::Timeout`] when cancelled;
    /// [`GraphError::Evaluation`] (e.g. `CREATE` of an existing graph). On any
    /// error the store is unchanged.
    pub fn update(
        &self,
        request: &UpdateRequest,
        options: &SparqlOptions,
        cancellation: &WriteCancellation,
    ) -> Result<(), GraphError> {
        let token = &cancellation.token;
        let mut parser = SparqlParser::new();
        if let Some(base) = &request.base_iri {
            parser = parser
                .with_base_iri(base.as_str())
                .map_err(|e| super::store::invalid_iri(base, e))?;
        }
        super::nesting::check_sparql(&request.update)?;
        let update = parser
            .parse_update(&request.update)
            .map_err(|e| GraphError::from_sparql_syntax(&e))?;
        if !options.allow_federation
            && update
                .operations
                .iter()
                .any(|op| matches!(op, GraphUpdateOperation::Load { .. }))
        {
            return Err(GraphError::Forbidden(
                "SPARQL LOAD makes the server fetch a URL; it is disabled (start graft with --allow-federation to enable it)".into(),
            ));
        }
        let using_default = graph_names(&request.using_graph_uris)?;
        let using_named = graph_names(&request.using_named_graph_uris)?;
        let mut prepared = evaluator(options, token).for_update(update);
        if !using_default.is_empty() || !using_named.is_empty() {
            for dataset in prepared.using_datasets_mut() {
                dataset.set_default_graph(
                    using_default
                        .iter()
                        .cloned()
                        .map(GraphName::NamedNode)
                        .collect(),
                );
                dataset.set_available_named_graphs(
                    using_named
                        .iter()
                        .cloned()
                        .map(NamedOrBlankNode::NamedNode)
                        .collect(),
                );
            }
        }
        self.write(|store| {
            let mut transaction = store.start_transaction()?;
            prepared
                .on_transaction(&mut transaction)
                .execute()
                .map_err(|e| update_error(e, token, options.timeout))?;
            if !cancellation.begin_commit() {
                // Dropping the transaction discards every change.
                return Err(GraphError::Timeout(options.timeout.unwrap_or_default()));
            }
            Ok(transaction.commit()?)
        })
    }
}

fn evaluator(options: &SparqlOptions, token: &CancellationToken) -> SparqlEvaluator {
    let evaluator = SparqlEvaluator::new().with_cancellation_token(token.clone());
    if options.allow_federation {
        evaluator
    } else {
        evaluator.without_default_http_service_handler()
    }
}

fn graph_names(iris: &[String]) -> Result<Vec<oxigraph::model::NamedNode>, GraphError> {
    iris.iter().map(|iri| parse_iri(iri)).collect()
}

const FEDERATION_OFF: &str = "SPARQL SERVICE makes the server fetch a URL; federated query is disabled (start graft with --allow-federation to enable it)";

fn query_error(
    e: QueryEvaluationError,
    token: &CancellationToken,
    timeout: Option<Duration>,
) -> GraphError {
    if token.is_cancelled() || matches!(e, QueryEvaluationError::Cancelled) {
        return GraphError::Timeout(timeout.unwrap_or_default());
    }
    match e {
        QueryEvaluationError::UnsupportedService(_) => GraphError::Forbidden(FEDERATION_OFF.into()),
        QueryEvaluationError::Dataset(inner) => GraphError::Storage(inner.to_string()),
        other => GraphError::Evaluation(other.to_string()),
    }
}

fn update_error(
    e: UpdateEvaluationError,
    token: &CancellationToken,
    timeout: Option<Duration>,
) -> GraphError {
    if token.is_cancelled() {
        return GraphError::Timeout(timeout.unwrap_or_default());
    }
    match e {
        UpdateEvaluationError::UnsupportedService(_) => {
            GraphError::Forbidden(FEDERATION_OFF.into())
        }
        UpdateEvaluationError::Storage(s) => GraphError::from(s),
        other => GraphError::Evaluation(other.to_string()),
    }
}
