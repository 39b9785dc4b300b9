//! Canton-shaped identifiers the simulator mints: namespaces
//! (`1220` + SHA-256 hex), synchronizer and party ids (`name::namespace`),
//! update ids and contract ids, all derived deterministically from seeds.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A Canton namespace fingerprint (`1220` multihash prefix + 64 hex) for `seed`.
pub fn namespace(seed: &str) -> String {
    format!("1220{}", sha256_hex(seed.as_bytes()))
}

/// `name::<namespace of seed>`.
pub fn unique_id(name: &str, seed: &str) -> String {
    format!("{name}::{}", namespace(seed))
}

/// The default logical synchronizer id.
pub fn default_synchronizer_id() -> String {
    unique_id("global-domain", "canton-sim synchronizer global-domain")
}

/// The namespace of the simulated participant (hosts the treasury and the noise parties).
pub fn participant_namespace() -> String {
    namespace("canton-sim participant1")
}

/// A party hosted by the simulated participant.
pub fn local_party(hint: &str) -> String {
    format!("{hint}::{}", participant_namespace())
}

/// A party hosted elsewhere (customers, token admins).
pub fn remote_party(hint: &str) -> String {
    unique_id(hint, &format!("canton-sim remote {hint}"))
}

/// Synchronizer id validation as Canton's `SynchronizerId.fromProtoPrimitive`
/// does it: exactly `identifier::namespace`, both non-empty; a physical id
/// (`…::<protocol version>-<serial>`) has a third part and is refused.
pub fn parse_logical_synchronizer_id(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split("::").collect();
    if parts.len() != 2 {
        return Err(format!(
            "Failed to parse synchronizer_id: invalid unique identifier `{s}`: expected <identifier>::<namespace>"
        ));
    }
    let (ident, ns) = (parts[0], parts[1]);
    if ident.is_empty() || ns.is_empty() {
        return Err(format!(
            "Failed to parse synchronizer_id: invalid unique identifier `{s}`: empty identifier or namespace"
        ));
    }
    if ident.len() > 185 || ns.len() > 68 {
        return Err(format!(
            "Failed to parse synchronizer_id: invalid unique identifier `{s}`: too long"
        ));
    }
    if !ns.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "Failed to parse synchronizer_id: invalid namespace `{ns}`: not a fingerprint"
        ));
    }
    if !ident
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b' ')
    {
        return Err(format!(
            "Failed to parse synchronizer_id: invalid identifier `{ident}`"
        ));
    }
    Ok(())
}

/// An update id (`1220` + 64 hex), unique per synchronizer position.
pub fn update_id(synchronizer_id: &str, seq: u64, record_time_us: i64) -> String {
    format!(
        "1220{}",
        sha256_hex(format!("update|{synchronizer_id}|{seq}|{record_time_us}").as_bytes())
    )
}

/// A contract id (`00` + 64 hex + suffix) for node `node` of update `update_id`.
pub fn contract_id(update_id: &str, node: u32) -> String {
    format!(
        "00{}ca1220",
        sha256_hex(format!("contract|{update_id}|{node}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronizer_id_forms() {
        let id = default_synchronizer_id();
        assert!(id.starts_with("global-domain::1220"));
        assert_eq!(id.len(), "global-domain::".len() + 68);
        assert!(parse_logical_synchronizer_id(&id).is_ok());
        assert!(parse_logical_synchronizer_id(&format!("{id}::34-0")).is_err());
        assert!(parse_logical_synchronizer_id("global-domain").is_err());
        assert!(parse_logical_synchronizer_id("::1220ab").is_err());
        assert!(parse_logical_synchronizer_id("a::b c").is_err());
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(update_id("s", 1, 5), update_id("s", 1, 5));
        assert_ne!(update_id("s", 1, 5), update_id("s", 2, 5));
        assert_eq!(update_id("s", 1, 5).len(), 68);
        assert_ne!(contract_id("u", 0), contract_id("u", 1));
        assert!(local_party("treasury").starts_with("treasury::1220"));
    }
}
