//! Every input a fuzzer found for the `credentials` target, and its seeds,
//! replayed through the target's property (`fuzz/regressions/credentials/`).

#[test]
fn credentials_inputs() {
    let replayed =
        cmsi_mail_testkit::fuzz::replay("credentials", cmsi_mail_gateway::fuzz::check_credentials);
    assert!(replayed > 0, "no inputs under fuzz/*/credentials");
}
