//! The node's ledger end (`StateService.GetLedgerEnd` on the ledger API), for
//! the lag in `status`, the limit of `set-offset` and the target of
//! `start --caught-up`.

use crate::args::LedgerArgs;
use canton_client::{CantonChannel, Target, grpc_client};
use canton_dr_cli::Result;
use canton_proto::ledger::GetLedgerEndRequest;
use canton_proto::ledger::state_service_client::StateServiceClient;

/// The ledger end, or `None` when no `--ledger-api` was given. Retries
/// transient failures (canton-client's policy); a node still unreachable is
/// a transient error (exit 3).
pub async fn ledger_end(args: &LedgerArgs) -> Result<Option<i64>> {
    let Some(address) = &args.ledger_api else {
        return Ok(None);
    };
    let config = args
        .connection
        .client_config(Target::ledger(address.clone()))?;
    let conn = CantonChannel::new(&config)?;
    let client = grpc_client!(StateServiceClient, conn);
    let response = conn
        .call(|_attempt| {
            let mut client = client.clone();
            async move { client.get_ledger_end(GetLedgerEndRequest {}).await }
        })
        .await?;
    Ok(Some(response.into_inner().offset))
}
