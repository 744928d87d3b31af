//! Confirmation of writes: a write tool's first call returns the planned requests and a one-time token bound to
//! that tool and those exact arguments; only a second call with the same arguments and the token sends them.
//! Tokens expire after [`TOKEN_LIFETIME`] and are used once.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a confirm token stays valid.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// A planned write: the tool, its arguments, and when it was planned.
type Planned = (String, Map<String, Value>, Instant);

/// Planned writes waiting for their confirmation, by token.
#[derive(Default)]
pub(crate) struct Pending(Mutex<HashMap<String, Planned>>);

impl Pending {
    /// A new token for `tool` called with `args` (without `confirm`).
    pub(crate) fn plan(&self, tool: &str, args: &Map<String, Value>) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.retain(|_, (_, _, at)| at.elapsed() < TOKEN_LIFETIME);
        m.insert(token.clone(), (tool.to_string(), args.clone(), Instant::now()));
        token
    }

    /// Takes `token` if it was given for this tool and these arguments and has not expired; why not otherwise.
    pub(crate) fn take(&self, token: &str, tool: &str, args: &Map<String, Value>) -> Result<(), String> {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((t, a, at)) = m.get(token) else {
            return Err("unknown or already used confirm token: call without confirm to plan the change again".into());
        };
        if at.elapsed() >= TOKEN_LIFETIME {
            m.remove(token);
            return Err("the confirm token has expired: call without confirm to plan the change again".into());
        }
        if t != tool || a != args {
            return Err("the confirm token was given for other arguments: call without confirm to plan this change".into());
        }
        m.remove(token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_confirms_only_its_own_change_once() {
        let p = Pending::default();
        let args = json!({"id": "a1", "status": "resolved"}).as_object().unwrap().clone();
        let other = json!({"id": "a2", "status": "resolved"}).as_object().unwrap().clone();
        let t = p.plan("update_alert", &args);
        assert!(p.take(&t, "update_alert", &other).is_err());
        assert!(p.take(&t, "update_incident", &args).is_err());
        assert!(p.take(&t, "update_alert", &args).is_ok());
        assert!(p.take(&t, "update_alert", &args).is_err(), "used once");
        assert!(p.take("nope", "update_alert", &args).is_err());
    }
}
