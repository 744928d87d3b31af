//! Shows what an interactive sign-in needs the user to see, on stderr, and opens the system browser.

use secgraph::auth::SignInPrompt;

/// Signs in a user on this terminal — when one is there to be asked.
#[derive(Debug)]
pub struct TerminalPrompt {
    /// Whether a person can be asked: stdin is a terminal (or the command line asked for a user sign-in with
    /// `--auth-type`), and neither `--no-prompt` nor `SECGRAPH_NO_PROMPT` says otherwise. A cron job, a container or
    /// `< /dev/null` cannot answer: a sign-in that needs a person then fails at once (exit 4) instead of waiting.
    pub interactive: bool,
}

impl SignInPrompt for TerminalPrompt {
    fn device_code(&self, message: &str) {
        eprintln!("{message}");
    }

    fn can_interact(&self) -> bool {
        self.interactive
    }

    fn can_open_browser(&self) -> bool {
        if cfg!(target_os = "macos") || cfg!(windows) {
            return true;
        }
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        // $BROWSER names one; otherwise a desktop session and xdg-open are needed.
        set("BROWSER") || ((set("DISPLAY") || set("WAYLAND_DISPLAY")) && on_path("xdg-open"))
    }

    fn open_browser(&self, url: &str) {
        eprintln!("Sign in with your browser. If it does not open, visit:\n  {url}");
        let from_env = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty());
        let opener = match &from_env {
            Some(b) => b.as_str(),
            None if cfg!(target_os = "macos") => "open",
            None if cfg!(windows) => "explorer",
            None => "xdg-open",
        };
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// Whether `program` is an executable file in one of `$PATH`'s folders.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
