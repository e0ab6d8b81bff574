//! Fuzz target `header`: see `cmsi_mail_testkit::fuzz::check_header` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_testkit::fuzz::check_header(data);
});
