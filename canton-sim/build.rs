//! Compiles the simulator's own control service (`canton_dr.sim.v1`) with
//! protox, as proto/build.rs does for the Canton protos, and a second,
//! server-only Ledger API `UpdateService` whose GetUpdates stream yields
//! pre-encoded `GetUpdatesResponse`s (see `ledger::encoded`): every message
//! type resolves to canton_proto's, except `GetUpdatesResponse`, which maps
//! to the simulator's `EncodedUpdatesResponse` (prost-build resolves an exact
//! extern path before any package prefix).
use protox::prost::Message as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=../proto/proto/com/daml/ledger/api/v2");
    let fds = protox::compile(["canton_dr/sim/v1/control.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("sim_control_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;

    let mut ledger = protox::compile(
        ["com/daml/ledger/api/v2/update_service.proto"],
        ["../proto/proto"],
    )?;
    // Only the service's own file: its imports are canton_proto's types.
    ledger
        .file
        .retain(|f| f.name() == "com/daml/ledger/api/v2/update_service.proto");
    let encoded_out = out.join("encoded_update_service");
    std::fs::create_dir_all(&encoded_out)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&encoded_out)
        .extern_path(".com.daml.ledger.api.v2", "::canton_proto::ledger")
        .extern_path(".google.rpc", "::canton_proto::google::rpc")
        .extern_path(
            ".com.daml.ledger.api.v2.GetUpdatesResponse",
            "crate::ledger::encoded::EncodedUpdatesResponse",
        )
        .compile_fds(ledger)?;
    Ok(())
}
