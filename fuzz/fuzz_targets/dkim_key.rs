//! Fuzz target `dkim_key`: see `cmsi_mail_testkit::dkim::check_dkim_key` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_testkit::dkim::check_dkim_key(data);
});
