//! Compiles tx-ingest's own view of the Ledger API updates
//! (`proto/canton_dr/tx_ingest/view/v1/update_view.proto`, package
//! `canton_dr.tx_ingest.view.v1`) with protox, as proto/build.rs does for the
//! Canton protos: messages only, no client or server. Canton's Daml value
//! types resolve to canton_proto's (`extern_path`), so only the view's own
//! messages are generated.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=../proto/proto/com/daml/ledger/api/v2/value.proto");
    const VIEW: &str = "canton_dr/tx_ingest/view/v1/update_view.proto";
    // The imports stay in the set (prost-build needs their messages to
    // derive the view's); being extern, they generate no code.
    let fds = protox::compile([VIEW], ["proto", "../proto/proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .extern_path(".com.daml.ledger.api.v2", "::canton_proto::ledger")
        .compile_fds(fds)?;
    Ok(())
}
