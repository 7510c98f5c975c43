//! Reading code through the pages: each entry's last change in a folder, the file page's links,
//! and dates with their time zone.

use crate::util::*;

/// Commits in `work` with the author's date `when` (e.g. `2024-03-09T18:00:00+0200`).
fn commit_at(work: &std::path::Path, message: &str, when: &str) {
    ok(git(work).args(["add", "-A"]));
    ok(git(work)
        .args(["commit", "-q", "-m", message])
        .env("GIT_AUTHOR_DATE", when)
        .env("GIT_COMMITTER_DATE", when));
}

/// The table row of the folder entry named `name` (its link's text) in a tree page.
fn row_of<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!(">{name}</a>"))
        .unwrap_or_else(|| panic!("no entry {name} in:\n{page}"));
    let start = page[..at].rfind("<tr>").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    &page[start..end]
}

#[test]
fn folder_pages_show_each_entrys_last_change() {
    let site = Site::new("reading_last", SiteOptions::default());
    let work = site.dir().join("work");
    std::fs::create_dir_all(work.join("docs")).unwrap();
    ok(git(&work).args(["init", "-q"]));
    std::fs::write(work.join("a.txt"), "a\n").unwrap();
    std::fs::write(work.join("docs/x.md"), "x\n").unwrap();
    std::fs::write(work.join("docs/y.md"), "y\n").unwrap();
    commit_at(&work, "First: add files", "2024-03-09T18:00:00+0200");
    std::fs::write(work.join("docs/x.md"), "x2\n").unwrap();
    commit_at(&work, "Second: edit <b>x</b>", "2024-03-10T09:30:00-0530");
    std::fs::write(work.join("b.txt"), "b\n").unwrap();
    commit_at(&work, "Third: add b", "2024-03-11T12:00:00+0000");
    // The same tree under another history: every entry's last change is that history's.
    ok(git(&work).args(["checkout", "-q", "--orphan", "copy"]));
    commit_at(&work, "Orphan copy of the tree", "2024-04-01T00:00:00+0000");
    ok(git(&work).args(["checkout", "-q", "main"]));
    // A folder too large for the column.
    std::fs::create_dir_all(work.join("many")).unwrap();
    for i in 0..1001 {
        std::fs::write(work.join(format!("many/f{i:04}")), "").unwrap();
    }
    ok(git(&work).args(["checkout", "-q", "-b", "many"]));
    commit_at(&work, "Many files", "2024-05-01T00:00:00+0000");
    ok(git(&work).args(["checkout", "-q", "main"]));
    import_work_tree(&site, &work, "alice/read");
    let srv = site.start();

    let home = srv.get(&site.target("/alice/read"));
    assert_eq!(home.status, 200, "{}", home.describe());
    let home = home.text();
    assert!(
        row_of(&home, "a.txt").contains("First: add files"),
        "{home}"
    );
    assert!(row_of(&home, "b.txt").contains("Third: add b"), "{home}");
    let docs = row_of(&home, "docs/");
    assert!(
        docs.contains("Second: edit &#60;b&#62;x&#60;/b&#62;"),
        "{docs}"
    );
    // Its date in the author's zone, exact, for the script to show as "... ago".
    assert!(
        docs.contains("datetime=\"2024-03-10T09:30:00-05:30\"")
            && docs.contains(">2024-03-10 09:30 -0530</time>"),
        "{docs}"
    );
    // Each entry's commit link opens that commit.
    let second = git_ok(&work, &["rev-parse", "main~1"]);
    assert!(
        docs.contains(&format!("/alice/read/commit/{}", second.trim())),
        "{docs}"
    );

    let sub = srv.get(&site.target("/alice/read/tree/main/docs")).text();
    assert!(row_of(&sub, "x.md").contains("Second: edit"), "{sub}");
    assert!(row_of(&sub, "y.md").contains("First: add files"), "{sub}");

    let copy = srv.get(&site.target("/alice/read/tree/copy")).text();
    for name in ["a.txt", "b.txt", "docs/"] {
        assert!(
            row_of(&copy, name).contains("Orphan copy of the tree"),
            "{copy}"
        );
    }

    let many = srv.get(&site.target("/alice/read/tree/many/many")).text();
    assert!(!row_of(&many, "f0000").contains("Many files"), "{many}");
    assert!(
        many.contains("Last changes are shown for folders of up to 1000 entries."),
        "{many}"
    );
    let top = srv.get(&site.target("/alice/read/tree/many")).text();
    assert!(row_of(&top, "many/").contains("Many files"), "{top}");

    // The history page and the commit page carry zones too.
    let log = srv.get(&site.target("/alice/read/commits/main")).text();
    assert!(log.contains(">2024-03-09 18:00 +0200</time>"), "{log}");
    srv.finish();
}

#[test]
fn file_pages_link_raw_and_history() {
    let (running, repo) = start_with_fixture("reading_links", "mixed", SiteOptions::default());
    let (site, srv) = (&running.site, &running.srv);
    let file = git_ok(&repo, &["ls-tree", "--name-only", "main"])
        .lines()
        .find(|n| n.ends_with(".md") || n.ends_with(".txt"))
        .expect("the fixture has a text file at its top")
        .to_string();
    let page = srv.get(&site.target(&format!("/alice/mixed/blob/main/{file}")));
    assert_eq!(page.status, 200, "{}", page.describe());
    let page = page.text();
    for (label, view) in [("Raw", "raw"), ("History", "commits")] {
        let href = format!("/alice/mixed/{view}/main/{file}");
        assert!(
            page.contains(&format!("<a href=\"{}\">{label}</a>", site.target(&href))),
            "no {label} link to {href}:\n{page}"
        );
        let r = srv.get(&site.target(&href));
        assert_eq!(r.status, 200, "{label}: {}", r.describe());
    }
    let history = srv
        .get(&site.target(&format!("/alice/mixed/commits/main/{file}")))
        .text();
    let last = git_ok(&repo, &["log", "-1", "--format=%h", "main", "--", &file]);
    assert!(history.contains(last.trim()), "{history}");
}
