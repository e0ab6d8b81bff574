//! Every input a fuzzer found for the gateway's targets, and their seeds,
//! replayed through each target's property (`fuzz/regressions/TARGET/`).

#[test]
fn credentials_inputs() {
    let replayed =
        cmsi_mail_testkit::fuzz::replay("credentials", cmsi_mail_gateway::fuzz::check_credentials);
    assert!(replayed > 0, "no inputs under fuzz/*/credentials");
}

#[test]
fn send_msg_inputs() {
    let replayed =
        cmsi_mail_testkit::fuzz::replay("send_msg", cmsi_mail_gateway::fuzz::check_send_msg);
    assert!(replayed > 0, "no inputs under fuzz/*/send_msg");
}
