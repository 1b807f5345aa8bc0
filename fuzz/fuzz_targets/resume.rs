//! Decodes arbitrary bytes as resume data, as given and with a valid checksum appended (so
//! that the fuzzer reaches the structure behind the checksum): nothing may panic, whatever
//! decodes must encode to bytes that decode to an equal value, and validating it against a
//! torrent must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_metainfo::Info;
use webtorrent_storage::{Layout, ResumeData};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut signed = data.to_vec();
    signed.extend_from_slice(&webtorrent_hash::sha1(data));
    check(&signed);
});

fn check(data: &[u8]) {
    let Ok(resume) = ResumeData::decode(data) else {
        return;
    };
    let encoded = resume.encode();
    let again = ResumeData::decode(&encoded).expect("encoded resume data decodes");
    assert_eq!(again, resume);
    assert_eq!(again.encode(), encoded, "encoding is stable");

    // A three-piece, one-file v1 torrent to validate against.
    let mut info = b"d6:lengthi40000e4:name1:x12:piece lengthi16384e6:pieces60:".to_vec();
    info.extend_from_slice(&[7; 60]);
    info.push(b'e');
    let layout = Layout::new(Info::from_bytes(&info).expect("valid info"));
    if let Ok(verified) = resume.validate(&layout, &resume.files) {
        assert_eq!(verified.len(), layout.piece_count());
    }
}
