//! The ledger side: the `GetUpdates` request for the treasury (3.4
//! `UpdateFormat`, LEDGER_EFFECTS, verbose, a wildcard plus the token-standard
//! interface filters with views, splice-exchange.md §1), the reader task that
//! decodes and parses the stream into a channel for the writer, and the
//! ledger-end, pruned-offset and update-offset look-ups.

use crate::update::{Item, decode};
use canton_client::{CantonChannel, CantonError, grpc_client};
use canton_dr_cli::{Error, ErrorKind, Result};
use canton_proto::ledger::state_service_client::StateServiceClient;
use canton_proto::ledger::update_service_client::UpdateServiceClient;
use canton_proto::ledger::{
    CumulativeFilter, EventFormat, Filters, GetLatestPrunedOffsetsRequest, GetLedgerEndRequest,
    GetUpdateByIdRequest, GetUpdatesRequest, Identifier, InterfaceFilter, TransactionFormat,
    TransactionShape, UpdateFormat, WildcardFilter, cumulative_filter::IdentifierFilter,
    get_update_response,
};
use futures::FutureExt as _;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

/// The token-standard interfaces whose views ingestion asks for, in
/// package-name form (canton-wire.md §4b).
pub const INTERFACES: [(&str, &str, &str); 3] = [
    (
        "#splice-api-token-transfer-instruction-v1",
        "Splice.Api.Token.TransferInstructionV1",
        "TransferFactory",
    ),
    (
        "#splice-api-token-holding-v1",
        "Splice.Api.Token.HoldingV1",
        "Holding",
    ),
    (
        "#splice-api-token-transfer-instruction-v1",
        "Splice.Api.Token.TransferInstructionV1",
        "TransferInstruction",
    ),
];

/// The update format of txingestion.rst: for `party`, a wildcard (no created
/// event blob) plus the token-standard interface filters with views;
/// LEDGER_EFFECTS; `verbose` (labels and record ids, so values decode by
/// name; without, the parser decodes by declaration order and both ends do
/// less work).
pub fn update_format(party: &str, verbose: bool) -> UpdateFormat {
    let mut cumulative = vec![CumulativeFilter {
        identifier_filter: Some(IdentifierFilter::WildcardFilter(WildcardFilter {
            include_created_event_blob: false,
        })),
    }];
    cumulative.extend(
        INTERFACES
            .iter()
            .map(|(pkg, module, entity)| CumulativeFilter {
                identifier_filter: Some(IdentifierFilter::InterfaceFilter(InterfaceFilter {
                    interface_id: Some(Identifier {
                        package_id: (*pkg).into(),
                        module_name: (*module).into(),
                        entity_name: (*entity).into(),
                    }),
                    include_interface_view: true,
                    include_created_event_blob: false,
                })),
            }),
    );
    UpdateFormat {
        include_transactions: Some(TransactionFormat {
            event_format: Some(EventFormat {
                filters_by_party: HashMap::from([(party.to_string(), Filters { cumulative })]),
                filters_for_any_party: None,
                verbose,
            }),
            transaction_shape: TransactionShape::LedgerEffects as i32,
        }),
        include_reassignments: None,
        include_topology_events: None,
    }
}

/// The `GetUpdates` request from `begin_exclusive` (to `end_inclusive`, or
/// endless).
pub fn request(
    party: &str,
    begin_exclusive: i64,
    end_inclusive: Option<i64>,
    verbose: bool,
) -> GetUpdatesRequest {
    GetUpdatesRequest {
        begin_exclusive,
        end_inclusive,
        update_format: Some(update_format(party, verbose)),
    }
}

/// The participant's ledger end (0 = empty), with the channel's retries.
pub async fn ledger_end(conn: &CantonChannel) -> Result<i64> {
    let client = grpc_client!(StateServiceClient, conn);
    let resp = conn
        .call(|_| {
            let mut c = client.clone();
            async move { c.get_ledger_end(GetLedgerEndRequest {}).await }
        })
        .await?;
    Ok(resp.into_inner().offset)
}

/// The participant's `participant_pruned_up_to_inclusive` (0 = never pruned).
pub async fn pruned_up_to(conn: &CantonChannel) -> Result<i64> {
    let client = grpc_client!(StateServiceClient, conn);
    let resp = conn
        .call(|_| {
            let mut c = client.clone();
            async move {
                c.get_latest_pruned_offsets(GetLatestPrunedOffsetsRequest {})
                    .await
            }
        })
        .await?;
    Ok(resp.into_inner().participant_pruned_up_to_inclusive)
}

/// The offset at which the node has the update `update_id` visible to
/// `party`; `None` when it has none (UPDATE_NOT_FOUND: not processed yet,
/// pruned, or never there).
pub async fn offset_of_update(
    conn: &CantonChannel,
    party: &str,
    update_id: &str,
) -> Result<Option<i64>> {
    let client = grpc_client!(UpdateServiceClient, conn);
    let request = GetUpdateByIdRequest {
        update_id: update_id.to_string(),
        update_format: Some(update_format(party, false)),
    };
    let resp = conn
        .call(|_| {
            let mut c = client.clone();
            let r = request.clone();
            async move { c.get_update_by_id(r).await }
        })
        .await;
    match resp {
        Ok(r) => Ok(r.into_inner().update.map(|u| match u {
            get_update_response::Update::Transaction(t) => t.offset,
            get_update_response::Update::Reassignment(r) => r.offset,
            get_update_response::Update::TopologyTransaction(t) => t.offset,
        })),
        Err(e) if e.code == tonic::Code::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Most updates the reader hands over at once.
const CHUNK: usize = 256;

/// What the reader sends the writer.
#[derive(Debug)]
pub enum Message {
    /// Decoded updates, in stream order (those that had arrived together).
    Items(Vec<Item>),
    /// The bounded stream ended (it reached `end_inclusive`).
    End,
    /// The stream failed; the error says whether retrying may help.
    Failed(Error),
}

/// A running reader: its thread and the channel it fills.
#[derive(Debug)]
pub struct Reader {
    /// Decoded updates, in stream order.
    pub rx: mpsc::Receiver<Message>,
    /// Dropped with the reader: the thread stops consuming the stream.
    _stop: oneshot::Sender<()>,
}

/// Opens `GetUpdates` for `party` from `begin` (to `end`) and decodes it on a
/// thread of its own, up to `buffer` chunks ahead of the writer.
///
/// The thread runs its own single-threaded runtime with its own connection
/// to the node, so receiving and decoding never delay the writer's answers
/// to PostgreSQL (which would sit idle meanwhile), and the two hand over
/// whole chunks, not single updates.
pub fn spawn_reader(
    conn: CantonChannel,
    party: String,
    begin: i64,
    end: Option<i64>,
    verbose: bool,
    buffer: usize,
) -> Reader {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let (stop, stopped) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("tx-ingest-reader".into())
        .spawn({
            let tx = tx.clone();
            move || reader_thread(conn, party, begin, end, verbose, tx, stopped)
        });
    if let Err(e) = spawned {
        let _ = tx.try_send(Message::Failed(Error::new(
            ErrorKind::Transient,
            format!("cannot start the stream reader thread: {e}"),
        )));
    }
    Reader { rx, _stop: stop }
}

fn reader_thread(
    conn: CantonChannel,
    party: String,
    begin: i64,
    end: Option<i64>,
    verbose: bool,
    tx: mpsc::Sender<Message>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Message::Failed(Error::new(
                ErrorKind::Transient,
                format!("cannot start the stream reader's runtime: {e}"),
            )));
            return;
        }
    };
    runtime.block_on(async move {
        let read_all = async {
            let conn = conn.fresh()?;
            read(&conn, &party, begin, end, verbose, &tx).await
        };
        tokio::select! {
            result = read_all => {
                if let Err(e) = result {
                    let _ = tx.send(Message::Failed(e)).await;
                }
            }
            // The writer dropped the reader (or is gone).
            _ = stopped => {}
        }
    });
}

async fn read(
    conn: &CantonChannel,
    party: &str,
    begin: i64,
    end: Option<i64>,
    verbose: bool,
    tx: &mpsc::Sender<Message>,
) -> Result<()> {
    // Opening the stream is retried like any call; a failure mid-stream is
    // reported to the writer, which resumes from its committed checkpoint.
    // Messages are decoded from one slice each (canton_client::codec).
    let mut stream = conn
        .call(|_| {
            let req = request(party, begin, end, verbose);
            canton_client::codec::server_streaming::<_, crate::view::GetUpdatesResponse>(
                conn,
                "com.daml.ledger.api.v2.UpdateService",
                "GetUpdates",
                req,
            )
        })
        .await
        .map_err(|e| stream_error(&e))?
        .into_inner();
    // Updates that have already arrived are decoded and handed over together,
    // so that a catch-up costs one wake-up of the writer per chunk rather
    // than per update; tailing, chunks hold one update.
    loop {
        let first = stream.message().await;
        let mut chunk = Vec::new();
        let mut next = Some(first);
        while let Some(received) = next.take() {
            match received {
                Ok(Some(resp)) => match decode(resp, party) {
                    Ok(Some(item)) => chunk.push(item),
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Message::Items(chunk)).await;
                        return Err(e);
                    }
                },
                Ok(None) => {
                    if !chunk.is_empty() && tx.send(Message::Items(chunk)).await.is_err() {
                        return Ok(());
                    }
                    let _ = tx.send(Message::End).await;
                    return Ok(());
                }
                Err(status) => {
                    if !chunk.is_empty() {
                        let _ = tx.send(Message::Items(chunk)).await;
                    }
                    return Err(stream_error(&conn.error(&status)));
                }
            }
            if chunk.len() < CHUNK {
                next = stream.message().now_or_never();
            }
        }
        if !chunk.is_empty() && tx.send(Message::Items(chunk)).await.is_err() {
            return Ok(());
        }
    }
}

/// A stream failure as a CLI error: transient when retrying may help
/// (unavailable, deadline, RetryInfo, a dropped connection).
pub fn stream_error(e: &CantonError) -> Error {
    let err = e.to_cli_error();
    if e.is_retryable() || e.is_connection_failure() {
        Error::new(ErrorKind::Transient, err.message().to_string())
            .with_hint(err.hint().unwrap_or("check the node"))
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_the_documented_filter() {
        let r = request("treasury::1220aa", 42, None, true);
        assert_eq!(r.begin_exclusive, 42);
        assert_eq!(r.end_inclusive, None);
        let tf = r.update_format.unwrap().include_transactions.unwrap();
        assert_eq!(tf.transaction_shape, TransactionShape::LedgerEffects as i32);
        let ef = tf.event_format.unwrap();
        assert!(ef.verbose);
        assert!(ef.filters_for_any_party.is_none());
        let filters = &ef.filters_by_party["treasury::1220aa"].cumulative;
        assert_eq!(filters.len(), 4);
        assert!(matches!(
            filters[0].identifier_filter,
            Some(IdentifierFilter::WildcardFilter(WildcardFilter {
                include_created_event_blob: false
            }))
        ));
        let ids: Vec<String> = filters[1..]
            .iter()
            .map(|f| match &f.identifier_filter {
                Some(IdentifierFilter::InterfaceFilter(i)) => {
                    assert!(i.include_interface_view);
                    assert!(!i.include_created_event_blob);
                    let id = i.interface_id.as_ref().unwrap();
                    format!("{}:{}:{}", id.package_id, id.module_name, id.entity_name)
                }
                other => panic!("not an interface filter: {other:?}"),
            })
            .collect();
        assert_eq!(
            ids,
            [
                "#splice-api-token-transfer-instruction-v1:Splice.Api.Token.TransferInstructionV1:TransferFactory",
                "#splice-api-token-holding-v1:Splice.Api.Token.HoldingV1:Holding",
                "#splice-api-token-transfer-instruction-v1:Splice.Api.Token.TransferInstructionV1:TransferInstruction",
            ]
        );
        let compact = request("treasury::1220aa", 0, Some(9), false);
        assert_eq!(compact.end_inclusive, Some(9));
        let ef = compact
            .update_format
            .unwrap()
            .include_transactions
            .unwrap()
            .event_format
            .unwrap();
        assert!(!ef.verbose);
    }
}
