//! Every input a fuzzer ever found, replayed through the same property checks as
//! the fuzz targets (`fuzz/regressions/TARGET/`), plus the seed corpora.

use cmsi_mail_testkit::fuzz::{
    check_address_list, check_header, check_json, check_request, replay,
};

#[test]
fn request_inputs() {
    assert!(replay("request", check_request) > 0);
}

#[test]
fn address_list_inputs() {
    assert!(replay("address_list", check_address_list) > 0);
}

#[test]
fn header_inputs() {
    assert!(replay("header", check_header) > 0);
}

#[test]
fn json_inputs() {
    assert!(replay("json", check_json) > 0);
}

#[test]
fn dkim_key_inputs() {
    assert!(replay("dkim_key", cmsi_mail_testkit::dkim::check_dkim_key) > 0);
}
