//! Encoded bytes of the generated Rust types, computed by hand from the
//! protobuf encoding rules, for the fields whose scalar kind is easy to get
//! wrong (zigzag `sint64`, `sfixed64`, proto3 `optional` presence).

use canton_proto::ledger::{GetUpdatesRequest, Value, value::Sum};
use prost::Message as _;

#[test]
fn value_int64_is_zigzag_encoded() {
    let bytes = Value {
        sum: Some(Sum::Int64(-1)),
    }
    .encode_to_vec();
    // field 3, wire type 0 (varint) = 0x18; zigzag(-1) = 1.
    assert_eq!(bytes, [0x18, 0x01]);
}

#[test]
fn value_timestamp_is_fixed_64_bit() {
    let bytes = Value {
        sum: Some(Sum::Timestamp(1)),
    }
    .encode_to_vec();
    // field 5, wire type 1 (64-bit) = 0x29, then 8 little-endian bytes.
    assert_eq!(bytes, [0x29, 1, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn value_date_is_plain_int32() {
    let bytes = Value {
        sum: Some(Sum::Date(-1)),
    }
    .encode_to_vec();
    // field 4, varint; a negative int32 is sign-extended to 10 bytes.
    assert_eq!(
        bytes,
        [
            0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]
    );
}

#[test]
fn end_inclusive_zero_is_sent_when_set() {
    let set = GetUpdatesRequest {
        end_inclusive: Some(0),
        ..Default::default()
    };
    // field 2, varint = 0x10, value 0: present because the field is `optional`.
    assert_eq!(set.encode_to_vec(), [0x10, 0x00]);
    let unset = GetUpdatesRequest::default();
    assert!(unset.encode_to_vec().is_empty());
}
