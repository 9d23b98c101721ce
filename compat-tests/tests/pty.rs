//! `docker run -it`, `docker exec -it` and `docker attach` at a real
//! terminal: the stock CLI in a pseudo-terminal, typed into as a user would.

use compat_tests::Berthd;

const PROMPT: &str = "/ # ";

#[test]
fn run_it_is_an_interactive_shell_with_the_terminals_size() {
    let daemon = Berthd::start_with_busybox();
    let mut term = daemon.docker_pty(&["run", "-it", "--name", "shell", "busybox", "sh"], 33, 101);
    term.expect(PROMPT, 30);
    // The size is right from the start (the CLI resizes right after start).
    term.send(b"stty size\r");
    term.expect("33 101", 10);
    term.expect(PROMPT, 10);
    term.send(b"echo $((6*7))\r");
    term.expect("42", 10);
    term.expect(PROMPT, 10);
    term.resize(40, 120);
    compat_tests::eventually(10, "the new size inside", || {
        term.send(b"stty size\r");
        let shown = term.expect(PROMPT, 10);
        shown.contains("40 120").then_some(())
    });
    // ctrl-c reaches the process in the container, not the CLI.
    term.send(b"sleep 300\r");
    compat_tests::eventually(10, "sleep to run", || {
        let top = daemon.docker(&["top", "shell"]);
        top.stdout.contains("sleep 300").then_some(())
    });
    term.send(b"\x03");
    term.expect(PROMPT, 10);
    term.send(b"echo code=$?\r");
    term.expect("code=130", 10);
    term.send(b"exit 7\r");
    assert_eq!(term.wait(30), 7, "{}", term.screen());
    assert_eq!(daemon.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "shell"), "exited 7");
}

#[test]
fn detach_keys_leave_the_container_running_and_attach_returns() {
    let daemon = Berthd::start_with_busybox();
    let mut term = daemon.docker_pty(&["run", "-it", "--name", "bg", "busybox", "sh"], 24, 80);
    term.expect(PROMPT, 30);
    term.send(b"echo first\r");
    term.expect("first", 10);
    term.expect(PROMPT, 10);
    // As with dockerd, `docker run` says nothing and exits 0.
    assert_eq!(term.detach(b"\x10\x11", 30), 0, "{}", term.screen());
    assert!(!term.screen().contains("escape"), "{}", term.screen());
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "bg"), "running");

    // Attach shows the live shell and feeds it; detaching says "read
    // escape sequence" and exits 1, as dockerd's CLI does.
    let mut term = daemon.docker_pty(&["attach", "bg"], 24, 80);
    term.send(b"echo again\r");
    // The shell's answer, not the terminal's own echo of the typing (the
    // keys must reach the CLI once it has put the terminal in raw mode).
    term.expect("\nagain", 30);
    assert_eq!(term.detach(b"\x10\x11", 30), 1, "{}", term.screen());
    // The reader thread may not have copied the last bytes yet when the CLI exits.
    term.expect("read escape sequence", 10);
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "bg"), "running");

    // Custom keys from the command line.
    let mut term = daemon.docker_pty(&["attach", "--detach-keys", "ctrl-a,x", "bg"], 24, 80);
    term.send(b"echo third\r");
    term.expect("\nthird", 30);
    assert_eq!(term.detach(b"\x01x", 30), 1, "{}", term.screen());
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "bg"), "running");

    // The shell's state survived all of it.
    let mut term = daemon.docker_pty(&["attach", "bg"], 24, 80);
    term.send(b"exit 4\r");
    assert_eq!(term.wait(30), 4, "{}", term.screen());
}

#[test]
fn exec_it_is_interactive_sized_and_detachable() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]).success();
    let mut term = daemon.docker_pty(&["exec", "-it", "box", "sh"], 30, 90);
    term.expect(PROMPT, 30);
    term.send(b"stty size\r");
    term.expect("30 90", 10);
    term.expect(PROMPT, 10);
    term.resize(31, 91);
    compat_tests::eventually(10, "the new size inside", || {
        term.send(b"stty size\r");
        let shown = term.expect(PROMPT, 10);
        shown.contains("31 91").then_some(())
    });
    term.send(b"sleep 300\r");
    compat_tests::eventually(10, "sleep to run", || {
        let top = daemon.docker(&["top", "box"]);
        (top.stdout.matches("sleep 300").count() == 2).then_some(())
    });
    term.send(b"\x03");
    term.expect(PROMPT, 10);
    term.send(b"echo code=$?\r");
    term.expect("code=130", 10);
    term.send(b"exit 3\r");
    assert_eq!(term.wait(30), 3, "{}", term.screen());

    let mut term = daemon.docker_pty(&["exec", "-it", "--detach-keys", "ctrl-a,ctrl-b", "box", "sh"], 24, 80);
    term.expect(PROMPT, 30);
    assert_eq!(term.detach(b"\x01\x02", 30), 1, "{}", term.screen());
    // The reader thread may not have copied the last bytes yet when the CLI exits.
    term.expect("read escape sequence", 10);
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "box"), "running");
}
