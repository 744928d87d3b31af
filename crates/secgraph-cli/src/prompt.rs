//! Shows what an interactive sign-in needs the user to see, on stderr, and opens the system browser.

use secgraph::auth::SignInPrompt;

#[derive(Debug)]
pub struct TerminalPrompt;

impl SignInPrompt for TerminalPrompt {
    fn device_code(&self, message: &str) {
        eprintln!("{message}");
    }

    fn open_browser(&self, url: &str) {
        eprintln!("Sign in with your browser. If it does not open, visit:\n  {url}");
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
