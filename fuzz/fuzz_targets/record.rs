//! `_mta-sts` TXT discovery (RFC 8461 §3.1): `record::parse` on one record and `record::select`
//! on a set of records (the input split at LF), as a DNS answer may hold them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_sts::error::RecordError;
use mta_sts::record;
use mta_sts_fuzz::assert_printable_line;

fuzz_target!(|data: &[u8]| {
    check(data, record::parse(data));
    let records: Vec<Vec<u8>> = data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let selected = record::select(&records);
    let sts = records.iter().filter(|r| r.starts_with(b"v=STSv1;")).count();
    match &selected {
        Err(RecordError::NotFound) => assert_eq!(sts, 0),
        Err(RecordError::Multiple { count }) => assert_eq!(*count, sts),
        _ => assert_eq!(sts, 1, "selected among {sts} v=STSv1; records"),
    }
    if let Ok(r) = &selected {
        let one = records.iter().find(|r| r.starts_with(b"v=STSv1;")).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(record::parse(one).as_ref(), Ok(r));
    }
    check(data, selected);
});

fn check(data: &[u8], result: Result<record::Record, RecordError>) {
    match result {
        Ok(r) => {
            assert!(record::is_valid_id(&r.id), "invalid id accepted: {:?}", r.id);
            assert!(data.starts_with(b"v=STSv1") || data.windows(8).any(|w| w == b"v=STSv1;"));
        }
        Err(e) => assert_printable_line(&e.to_string(), "record error"),
    }
}
