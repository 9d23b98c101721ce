//! The API frame and the system endpoints, through the stock clients.

use compat_tests::Berthd;

#[test]
fn docker_version_shows_berthd_on_containerd() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["version"]).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    assert!(out.stdout.contains(" containerd:\n  Version:          1."), "{}", out.stdout);
}
