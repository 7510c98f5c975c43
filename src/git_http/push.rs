//! A push, and what follows it: once git's answer is written, maintenance of the repository
//! starts in the background when the push left it worth maintaining (`repos::start_maintenance`
//! decides, from a look at its object folders). The push never waits for maintenance.

use std::io::{self, Read, Write};

use crate::error::Result;
use crate::git::RepoDir;
use crate::response::{Answer, Stream};
use crate::site::Site;

use super::{smart, GitCall};

/// `POST git-receive-pack`: the push (see `smart`), then maybe maintenance.
pub(crate) fn receive_pack<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    let answer = smart::receive_pack(site, c)?;
    if !site.config.maintenance.auto {
        return Ok(answer);
    }
    Ok(match answer {
        Answer::Stream(push) => Answer::Stream(Box::new(ThenMaintain {
            push,
            site,
            repo: c.repo.clone(),
        })),
        other => other,
    })
}

/// A push's exchange, then the start of maintenance.
struct ThenMaintain<'s> {
    push: Box<dyn Stream + 's>,
    site: &'s Site,
    repo: RepoDir,
}

impl Stream for ThenMaintain<'_> {
    fn run(
        self: Box<Self>,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        head_only: bool,
    ) -> io::Result<()> {
        let ThenMaintain { push, site, repo } = *self;
        let pushed = push.run(input, out, head_only);
        if pushed.is_ok() {
            // The answer goes out first; starting maintenance takes a few milliseconds.
            let _ = out.flush();
            if let Err(e) = crate::repos::start_maintenance(&site.config, &repo) {
                START_LOG.warn(&format!(
                    "{}/{}: cannot start maintenance after a push: {e}",
                    repo.owner, repo.name
                ));
            }
        }
        pushed
    }
}

/// At most one line a minute about maintenance that could not start.
static START_LOG: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new(60);
