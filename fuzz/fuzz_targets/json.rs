//! Fuzz target `json`: see `cmsi_mail_testkit::fuzz::check_json` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_testkit::fuzz::check_json(data);
});
