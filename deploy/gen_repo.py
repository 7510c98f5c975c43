#!/usr/bin/env python3
"""gen_repo.py: deterministic `git fast-import` streams for forgelet's benchmark repositories.

Nothing is downloaded and nothing is random between runs: every choice comes from a seeded
random.Random (Mersenne Twister, whose integer, choice and byte streams are the same on every
Python 3.9+), every date from a fixed clock and every identity from fixed lists, so the same
arguments give the same commit ids everywhere.

  gen_repo.py large [--commits N] [--binary-every N] [--deleted-refs FILE]
      A large repository that looks like a real project's: source-like text files (lines that
      change a little per commit, functions added and removed), files added, renamed and deleted
      over time, a few folders deep; prebuilt binaries (incompressible, 1 to 4 MB) replaced now
      and then; short feature branches merged back into main with merge commits; release
      branches with fixes; annotated and lightweight tags (about one per 90 commits on main).
      Merged feature branches' names are written to FILE (one ref a line) for deletion after the
      import, as a project deletes merged branches.

  gen_repo.py users N
      The names of the site's N users, one a line (add them with `forgelet user add`).

  gen_repo.py site DEST TEMPLATES [--repos N] [--users N]
      The repositories of a forgelet data folder: N small ones (DEST/repos/OWNER/NAME.git, about
      one in ten private) owned by the users named by `users`, a few owning most. Each is hard
      links to one of TEMPLATES' packs plus its own config, description and packed-refs (main
      at one of the template's commits, sometimes a dev branch and a tag).

  gen_repo.py small SEED... [--out DIR]
      A small repository of 12 commits on main (a README, a few source files, a license),
      seeded by SEED (to stdout, or with --out for each SEED to DIR/tSEED.fi). Its commits are also marked main-1 .. main-12 by lightweight tags named
      c1 .. c12 so a copy can point main at any of them.

Output goes to stdout; feed it to `git fast-import --quiet` in a new bare repository.
"""

import argparse
import random
import sys

# ----------------------------------------------------------------------------------------------
# Words: identifiers, prose and names. Fixed lists, so the text is the same everywhere.

NOUNS = (
    "buf len ctx node item count index value state conf path name next prev list map key data "
    "size flag mode err res req resp line text file dir user repo tree blob commit ref head tag "
    "pack hash cache lock time queue worker slot limit offset chunk frame header body token "
    "session stamp owner entry table row column cursor stream reader writer parser lexer span "
    "scope block field record batch page window delta depth width height score weight"
).split()
VERBS = (
    "read write parse open close find load store check build make init free reset flush sync "
    "send recv split join merge sort scan walk visit emit apply update insert remove push pop "
    "encode decode resolve lookup render format validate compute collect drain"
).split()
TYPES_C = "int size_t char uint32_t uint64_t bool long unsigned double ssize_t".split()
TYPES_RS = "usize u32 u64 i64 bool String Vec<u8> &str Option<usize> Result<(), Error>".split()
SUBJ_VERBS = (
    "Fix Add Remove Refactor Simplify Speed up Document Rename Handle Check Avoid Use Drop "
    "Support Clean up Move Split Test Guard Cache Limit Log"
).split()
PREPS = "in for when during after before around inside".split()
PROSE = (
    "the a an this that it we now also only still again when while because so but and or not "
    "never always every each some most few many more less first last next previous same other "
    "value request reader writer caller path file line lines branch commit repository cache "
    "limit buffer error case test tests code function helper module loop check result output "
    "input size time order name names slow fast small large empty full old new wrong right "
    "returns keeps makes takes reads writes fails passes breaks fixes changes moves avoids uses"
).split()
FIRST = (
    "Ada Alan Barbara Brian Carol Claude Dana Dennis Edsger Elena Frances Grace Hedy Ivan Joan "
    "John Ken Linus Margaret Niklaus Olga Peter Radia Rob Sophie Tim Ursula Vint Wei Xavier "
    "Yukihiro Zoe Anders Bjarne Chidi Dmitri Esther Fatima Guido Hana"
).split()
LAST = (
    "Lovelace Turing Liskov Kernighan Shannon Ritchie Dijkstra Moler Allen Thompson Hamilton "
    "Wirth Perlman Pike Wilson Berners-Lee Franklin Cerf Zhang Leroy Matsumoto Hejlsberg "
    "Stroustrup Okafor Ivanov Cohen Haddad Rossum Novak Sato Meyer Petrov Garcia Nkosi Silva"
).split()
ZONES = ("+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900", "-0300")


class Out:
    """Buffered binary stdout."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.raw = sys.stdout.buffer

    def write(self, b):
        self.parts.append(b)
        self.size += len(b)
        if self.size > 1 << 20:
            self.flush()

    def flush(self):
        self.raw.write(b"".join(self.parts))
        self.parts = []
        self.size = 0
        self.raw.flush()


def data(out, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    out.write(b"data %d\n" % len(payload))
    out.write(payload)
    out.write(b"\n")


class Text:
    """Source-like lines for one language, from one random generator."""

    def __init__(self, rng):
        self.rng = rng

    def ident(self):
        r = self.rng
        return r.choice(VERBS) + "_" + r.choice(NOUNS)

    def expr(self):
        r = self.rng
        k = r.randrange(6)
        if k == 0:
            return "%s(%s, %s)" % (self.ident(), r.choice(NOUNS), r.choice(NOUNS))
        if k == 1:
            return "%s + %d" % (r.choice(NOUNS), r.randrange(1, 512))
        if k == 2:
            return "%s.%s" % (r.choice(NOUNS), r.choice(NOUNS))
        if k == 3:
            return "%s(%s)" % (self.ident(), r.choice(NOUNS))
        if k == 4:
            return "%s[%s]" % (r.choice(NOUNS), r.choice(NOUNS))
        return str(r.randrange(0, 4096))

    def comment_words(self, n):
        r = self.rng
        return " ".join(r.choice(PROSE) for _ in range(n))

    def statement(self, lang, indent):
        """One line of a body at this indentation (spaces)."""
        r = self.rng
        pad = " " * indent
        k = r.randrange(10)
        if lang == "md":
            return self.prose_line()
        if lang == "py":
            if k < 4:
                return "%s%s = %s\n" % (pad, r.choice(NOUNS), self.expr())
            if k < 6:
                return "%sif %s > %d:\n" % (pad, r.choice(NOUNS), r.randrange(100))
            if k < 8:
                return "%sreturn %s\n" % (pad, self.expr())
            if k < 9:
                return "%s# %s\n" % (pad, self.comment_words(r.randrange(3, 10)))
            return "%s%s(%s)\n" % (pad, self.ident(), self.expr())
        if lang == "rs":
            if k < 4:
                return "%slet %s = %s;\n" % (pad, r.choice(NOUNS), self.expr())
            if k < 6:
                return "%sif %s > %d {\n" % (pad, r.choice(NOUNS), r.randrange(100))
            if k < 7:
                return "%sreturn Ok(%s);\n" % (pad, self.expr())
            if k < 8:
                return "%s// %s\n" % (pad, self.comment_words(r.randrange(3, 10)))
            if k < 9:
                return "%s}\n" % pad
            return "%s%s(%s)?;\n" % (pad, self.ident(), self.expr())
        # c
        if k < 4:
            return "%s%s = %s;\n" % (pad, r.choice(NOUNS), self.expr())
        if k < 5:
            return "%s%s %s = %s;\n" % (pad, r.choice(TYPES_C), r.choice(NOUNS), self.expr())
        if k < 6:
            return "%sif (%s > %d)\n" % (pad, r.choice(NOUNS), r.randrange(100))
        if k < 7:
            return "%sreturn %s;\n" % (pad, self.expr())
        if k < 8:
            return "%s/* %s */\n" % (pad, self.comment_words(r.randrange(3, 10)))
        return "%s%s(%s);\n" % (pad, self.ident(), self.expr())

    def prose_line(self):
        r = self.rng
        words = [r.choice(PROSE) for _ in range(r.randrange(6, 14))]
        words[0] = words[0].capitalize()
        return " ".join(words) + ".\n"

    def block(self, lang):
        """A function (or a section of a document): a header, a body, an end."""
        r = self.rng
        n = r.randrange(3, 16)
        name = self.ident()
        if lang == "md":
            lines = ["\n", "## %s %s\n" % (name.replace("_", " ").capitalize(), r.choice(NOUNS)), "\n"]
            return lines + [self.prose_line() for _ in range(n)]
        if lang == "py":
            head = ["\n", "\n", "def %s(%s, %s):\n" % (name, r.choice(NOUNS), r.choice(NOUNS))]
            head.append('    """%s."""\n' % self.comment_words(r.randrange(4, 10)).capitalize())
            return head + [self.statement(lang, 4) for _ in range(n)] + ["    return None\n"]
        if lang == "rs":
            head = ["\n", "/// %s.\n" % self.comment_words(r.randrange(4, 10)).capitalize()]
            head.append("pub fn %s(%s: %s) -> Result<(), Error> {\n" % (name, r.choice(NOUNS), r.choice(TYPES_RS)))
            return head + [self.statement(lang, 4) for _ in range(n)] + ["    Ok(())\n", "}\n"]
        head = ["\n", "/* %s. */\n" % self.comment_words(r.randrange(4, 10)).capitalize()]
        head.append("static int %s(struct %s *%s, %s %s)\n" % (
            name, r.choice(NOUNS), r.choice(NOUNS), r.choice(TYPES_C), r.choice(NOUNS)))
        head.append("{\n")
        return head + [self.statement(lang, 4) for _ in range(n)] + ["    return 0;\n", "}\n"]

    def new_file(self, lang, blocks):
        lines = []
        if lang == "c":
            lines = ["/* SPDX-License-Identifier: MIT */\n", "#include <stdlib.h>\n",
                     "#include \"%s.h\"\n" % self.rng.choice(NOUNS)]
        elif lang == "rs":
            lines = ["//! %s.\n" % self.comment_words(8).capitalize(), "\n", "use crate::error::Error;\n"]
        elif lang == "py":
            lines = ['"""%s."""\n' % self.comment_words(8).capitalize(), "\n", "import os\n"]
        else:
            lines = ["# %s\n" % self.ident().replace("_", " ").capitalize()]
        for _ in range(blocks):
            lines += self.block(lang)
        return lines

    def edit(self, lang, lines, max_lines):
        """A new list: a few lines replaced, some inserted, a few deleted; sometimes a block
        added, and a chunk dropped when the file grew past max_lines."""
        r = self.rng
        lines = list(lines)
        n = len(lines)
        for _ in range(r.randrange(1, 4)):
            i = r.randrange(n)
            if lines[i].startswith("    "):
                lines[i] = self.statement(lang, 8 if lines[i].startswith("        ") else 4)
        for _ in range(r.randrange(0, 4)):
            i = r.randrange(len(lines))
            new = [self.statement(lang, 4) for _ in range(r.randrange(1, 4))]
            lines[i:i] = new
        if r.randrange(3) == 0 and len(lines) > 20:
            i = r.randrange(len(lines) - 3)
            if lines[i].startswith("    "):
                del lines[i:i + r.randrange(1, 3)]
        if r.randrange(25) == 0:
            lines += self.block(lang)
        if len(lines) > max_lines:
            i = r.randrange(5, len(lines) - 60)
            del lines[i:i + r.randrange(20, 60)]
        return lines


def blob(lines):
    return "".join(lines).encode()


# ----------------------------------------------------------------------------------------------
# The large repository.

BINARIES = (
    ("assets/fonts/Sans-Regular.ttf", 1_300_000),
    ("assets/fonts/Sans-Bold.ttf", 1_350_000),
    ("assets/img/splash.png", 2_600_000),
    ("assets/img/screenshot-dark.png", 1_900_000),
    ("docs/manual/manual.pdf", 3_800_000),
    ("vendor/prebuilt/linux-x86_64/libcodec.so", 3_200_000),
    ("vendor/prebuilt/linux-aarch64/libcodec.so", 3_000_000),
    ("tests/data/corpus/large-sample.bin", 4_000_000),
    ("tests/data/fixtures/archive.tar.gz", 2_200_000),
    ("tools/bin/format-check", 1_600_000),
)

TOP = ("src", "lib", "tests", "docs", "tools", "include", "bench", "examples")
LANG_OF_TOP = {"src": "rs", "lib": "c", "tests": "py", "docs": "md", "tools": "py",
               "include": "c", "bench": "rs", "examples": "rs"}
EXT = {"rs": ".rs", "c": ".c", "py": ".py", "md": ".md"}


class Large:
    def __init__(self, args):
        self.rng = random.Random(0x5EED_F0E6_E1E7)
        self.text = Text(self.rng)
        self.out = Out()
        self.args = args
        self.clock = 1325376000  # 2012-01-01T00:00:00Z
        self.mark = 0
        self.people = []
        r = self.rng
        for i in range(48):
            first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
            email = "%s.%s@%s" % (first.lower(), last.lower(), r.choice(
                ("example.org", "example.com", "users.example.net")))
            self.people.append(("%s %s" % (first, last), email, ZONES[i % len(ZONES)]))
        # Most commits come from a few people, as in real projects.
        self.weights = [1.0 / (i + 1) ** 1.1 for i in range(len(self.people))]
        self.dirs = self.make_dirs()
        self.main = {}  # path -> list of lines (text) or bytes (binary); never mutated in place
        self.locked = {}  # path -> open branches that changed it
        self.hot = []
        self.main_tip = None
        self.main_count = 0
        self.tags = set()
        self.deleted_refs = []
        self.release = []  # [name, state, tip mark, fixes]
        self.features = []  # [ref, state, tip mark, changed paths, merge at main_count]
        self.version = [0, 1, 0]
        self.counts = {"commits": 0, "merges": 0, "annotated": 0, "lightweight": 0,
                       "renames": 0, "deletes": 0, "adds": 0, "binaries": 0}

    def make_dirs(self):
        r = self.rng
        dirs = []
        for top in TOP:
            for _ in range(r.randrange(2, 6)):
                d = [top]
                for _ in range(r.randrange(1, 4)):
                    d.append(r.choice(NOUNS))
                dirs.append("/".join(d))
            dirs.append(top)
        return sorted(set(dirs))

    def lang(self, path):
        return {".rs": "rs", ".c": "c", ".h": "c", ".py": "py", ".md": "md"}.get(
            path[path.rfind("."):], "md")

    def new_path(self, lang=None):
        r = self.rng
        for _ in range(100):
            d = r.choice(self.dirs)
            if lang is not None and LANG_OF_TOP[d.split("/")[0]] != lang:
                continue
            if r.randrange(8) == 0:
                d = d + "/" + r.choice(NOUNS)
                if d not in self.dirs:
                    self.dirs.append(d)
            lang = LANG_OF_TOP[d.split("/")[0]]
            p = "%s/%s_%s%s" % (d, r.choice(VERBS), r.choice(NOUNS), EXT[lang])
            if p not in self.main and not any(p.startswith(k + "/") for k in self.main):
                return p
        if lang is None:
            raise SystemExit("gen_repo.py: no free path found for a new file")
        return None

    def tick(self):
        self.clock += self.rng.randrange(60, 5400)
        return self.clock

    def person(self):
        return self.rng.choices(self.people, self.weights)[0]

    def subject(self, path):
        r = self.rng
        module = path.split("/")[-1].split(".")[0].replace("_", " ")
        return "%s %s %s %s" % (r.choice(SUBJ_VERBS), r.choice(NOUNS), r.choice(PREPS), module)

    def message(self, path):
        r = self.rng
        msg = self.subject(path) + "\n"
        paras = r.choice((0, 0, 1, 1, 1, 2, 3))
        for _ in range(paras):
            words = [r.choice(PROSE) for _ in range(r.randrange(12, 60))]
            words[0] = words[0].capitalize()
            lines, line = [], ""
            for w in words:
                if len(line) + len(w) + 1 > 72:
                    lines.append(line)
                    line = w
                else:
                    line = (line + " " + w).strip()
            lines.append(line + ".")
            msg += "\n" + "\n".join(lines) + "\n"
        return msg

    def commit(self, ref, parent, msg, changes, merge=None, who=None):
        """changes: [(path, content)] with content a list of lines, bytes, None (delete) or
        ('R', old) (rename old to path)."""
        self.mark += 1
        out = self.out
        name, email, zone = who or self.person()
        when = self.tick()
        out.write(b"commit %s\nmark :%d\n" % (ref.encode(), self.mark))
        ident = ("%s <%s> %d %s\n" % (name, email, when, zone)).encode()
        out.write(b"author " + ident)
        out.write(b"committer " + ident)
        data(out, msg)
        if parent is not None:
            out.write(b"from :%d\n" % parent)
        if merge is not None:
            out.write(b"merge :%d\n" % merge)
        for path, content in changes:
            p = path.encode()
            if content is None:
                out.write(b"D %s\n" % p)
            elif isinstance(content, tuple):
                out.write(b"R %s %s\n" % (content[1].encode(), p))
            else:
                mode = b"100755" if path.startswith("tools/bin/") else b"100644"
                out.write(b"M %s inline %s\n" % (mode, p))
                data(out, content if isinstance(content, bytes) else blob(content))
        self.counts["commits"] += 1
        if merge is not None:
            self.counts["merges"] += 1
        return self.mark

    def tag(self, name, mark, annotated, message=None):
        if name in self.tags:
            return
        self.tags.add(name)
        if annotated:
            who = self.people[0]
            self.out.write(b"tag %s\nfrom :%d\n" % (name.encode(), mark))
            self.out.write(("tagger %s <%s> %d %s\n" % (who[0], who[1], self.clock, who[2])).encode())
            data(self.out, message or "Release %s\n" % name)
            self.counts["annotated"] += 1
        else:
            self.out.write(b"reset refs/tags/%s\nfrom :%d\n\n" % (name.encode(), mark))
            self.counts["lightweight"] += 1

    def binary(self, size):
        r = self.rng
        n = size + r.randrange(-size // 10, size // 10)
        return r.randbytes(n)

    def pick_text(self, state, avoid_locked):
        r = self.rng
        for _ in range(50):
            if self.hot and r.randrange(10) < 7:
                p = r.choice(self.hot)
            else:
                p = r.choice(self.paths)
            if p in state and not isinstance(state[p], bytes) and not (avoid_locked and p in self.locked):
                return p
        if lang is None:
            raise SystemExit("gen_repo.py: no free path found for a new file")
        return None

    def refresh_paths(self):
        self.paths = [p for p in self.main if not isinstance(self.main[p], bytes)]

    def run(self):
        r = self.rng
        a = self.args
        t = self.text
        out = self.out
        out.write(b"feature done\n")
        # The initial import: a few hundred files, the binaries, a README.
        changes = []
        for _ in range(320):
            p = self.new_path()
            lines = t.new_file(self.lang(p), r.randrange(2, 14))
            self.main[p] = lines
            changes.append((p, lines))
        for p, size in BINARIES:
            self.main[p] = self.binary(size)
            changes.append((p, self.main[p]))
        readme = t.new_file("md", 6)
        self.main["README.md"] = readme
        changes.append(("README.md", readme))
        self.refresh_paths()
        self.main_tip = self.commit("refs/heads/main", None, "Initial import\n", changes,
                                    who=self.people[0])
        self.main_count = 1
        self.hot = r.choices(self.paths, k=40)
        while self.counts["commits"] < a.commits:
            self.step()
        # Feature branches still open stay as they are: work in progress.
        out.write(b"done\n")
        out.flush()
        if a.deleted_refs:
            with open(a.deleted_refs, "w") as f:
                for ref in self.deleted_refs:
                    f.write(ref + "\n")
        c = self.counts
        sys.stderr.write(
            "gen_repo.py: %d commits (%d merges), %d annotated and %d lightweight tags, "
            "%d files added, %d renamed, %d deleted, %d binary versions, %d branches merged\n"
            % (c["commits"], c["merges"], c["annotated"], c["lightweight"], c["adds"],
               c["renames"], c["deletes"], c["binaries"], len(self.deleted_refs)))

    def step(self):
        r = self.rng
        t = self.text
        a = self.args
        n = self.main_count
        # A feature branch due for merging is merged first.
        for f in list(self.features):
            if f[4] <= n:
                self.merge_feature(f)
        changes = []
        first = None
        k = r.choice((1, 1, 1, 2, 2, 3))
        picked = []
        for _ in range(k):
            p = self.pick_text(self.main, False)
            if p and p not in picked:
                picked.append(p)
        for p in picked:
            self.main[p] = t.edit(self.lang(p), self.main[p], 1400)
            changes.append((p, self.main[p]))
        u = r.random()
        if u < 0.025:
            p = self.new_path()
            self.main[p] = t.new_file(self.lang(p), r.randrange(1, 8))
            changes.append((p, self.main[p]))
            self.paths.append(p)
            self.counts["adds"] += 1
            if r.randrange(3) == 0:
                self.hot[r.randrange(len(self.hot))] = p
        elif u < 0.028:
            old = self.pick_text(self.main, True)
            if old and old not in picked and old != "README.md":
                new = self.new_path(self.lang(old))
                if new is not None:
                    self.main[new] = self.main.pop(old)
                    changes.append((new, ("R", old)))
                    self.refresh_paths()
                    self.hot = [new if h == old else h for h in self.hot]
                    self.counts["renames"] += 1
        elif u < 0.0305:
            old = self.pick_text(self.main, True)
            if old and old not in picked and old != "README.md" and len(self.paths) > 200:
                del self.main[old]
                changes.append((old, None))
                self.refresh_paths()
                self.hot = [h for h in self.hot if h != old] or r.choices(self.paths, k=40)
                self.counts["deletes"] += 1
        if r.randrange(200) == 0:
            # The hot set drifts: work moves to other parts of the code.
            self.hot[r.randrange(len(self.hot))] = r.choice(self.paths)
        if n % a.binary_every == 0:
            p, size = BINARIES[r.randrange(len(BINARIES))]
            self.main[p] = self.binary(size)
            changes.append((p, self.main[p]))
            self.counts["binaries"] += 1
        if not changes:
            p = self.pick_text(self.main, False)
            self.main[p] = t.edit(self.lang(p), self.main[p], 1400)
            changes.append((p, self.main[p]))
        self.main_tip = self.commit("refs/heads/main", self.main_tip,
                                    self.message(changes[0][0]), changes)
        self.main_count += 1
        n = self.main_count
        # Tags: a release every 150 commits on main (annotated), a lightweight snapshot tag
        # between two releases, and a lightweight marker every 300.
        if n % 150 == 0:
            v = self.version
            v[2] += 1
            if v[2] == 10:
                v[1], v[2] = v[1] + 1, 0
            name = "v%d.%d.%d" % tuple(v)
            self.tag(name, self.main_tip, True, "Release %s\n\n%s\n" % (name, t.prose_line()))
        elif n % 150 == 75:
            self.tag("snapshot-%06d" % n, self.main_tip, False)
        if n % 300 == 37:
            self.tag("ci-green-%06d" % n, self.main_tip, False)
        # A release branch every 12,000 commits, fixed now and then while it is one of the two
        # newest.
        if n % 12000 == 6000:
            # Main goes on at MAJOR.1.0; MAJOR.0.N are the release branch's fixes.
            self.version[0] += 1
            self.version[1], self.version[2] = 1, 0
            name = "release/%d.x" % self.version[0]
            self.release.append([name, dict(self.main), self.main_tip, 0])
        if self.release and n % 97 == 0:
            self.release_fix(self.release[-1 if n % 2 else max(-2, -len(self.release))])
        # Feature branches: about one every 60 commits, 2 to 12 commits long, merged 3 to 40
        # commits later.
        if r.randrange(60) == 0 and len(self.features) < 6:
            self.start_feature()

    def release_fix(self, rel):
        r = self.rng
        name, state, tip, fixes = rel
        p = None
        for _ in range(20):
            q = r.choice(list(state)) if r.randrange(4) == 0 else r.choice(self.hot)
            if q in state and not isinstance(state[q], bytes):
                p = q
                break
        if p is None:
            return
        state[p] = self.text.edit(self.lang(p), state[p], 1400)
        rel[2] = self.commit("refs/heads/" + name, tip, "Backport: " + self.message(p), [(p, state[p])])
        rel[3] += 1
        if rel[3] % 6 == 0:
            tagname = "%s.%d" % (name.split("/")[1].replace(".x", ".0"), rel[3] // 6)
            self.tag("v" + tagname, rel[2], True)

    def start_feature(self):
        r = self.rng
        t = self.text
        ref = "refs/heads/%s/%s-%s" % (r.choice(("feature", "fix", "topic")), r.choice(VERBS), r.choice(NOUNS))
        if any(f[0] == ref for f in self.features) or ref in self.deleted_refs:
            ref += "-%d" % self.main_count
        state = {}
        tip = self.main_tip
        changed = []
        for i in range(r.randrange(2, 13)):
            changes = []
            for _ in range(r.choice((1, 1, 2))):
                p = self.pick_text(self.main, False)
                if p is None:
                    continue
                cur = state.get(p, self.main[p])
                state[p] = t.edit(self.lang(p), cur, 1400)
                changes.append((p, state[p]))
                if p not in changed:
                    changed.append(p)
            if r.randrange(8) == 0:
                p = self.new_path()
                if p not in state:
                    state[p] = t.new_file(self.lang(p), r.randrange(1, 5))
                    changes.append((p, state[p]))
                    changed.append(p)
            if not changes:
                continue
            tip = self.commit(ref, tip, self.message(changes[0][0]), changes)
        if tip == self.main_tip:
            return
        for p in changed:
            self.locked[p] = self.locked.get(p, 0) + 1
        self.features.append([ref, state, tip, changed, self.main_count + r.randrange(3, 40)])

    def merge_feature(self, f):
        ref, state, tip, changed, _ = f
        self.features.remove(f)
        changes = []
        for p in changed:
            self.locked[p] -= 1
            if not self.locked[p]:
                del self.locked[p]
            self.main[p] = state[p]
            changes.append((p, state[p]))
        self.refresh_paths()
        branch = ref[len("refs/heads/"):]
        self.main_tip = self.commit("refs/heads/main", self.main_tip,
                                    "Merge branch '%s'\n" % branch, changes, merge=tip,
                                    who=self.people[0])
        self.main_count += 1
        self.deleted_refs.append(ref)


# ----------------------------------------------------------------------------------------------
# Small repositories.

def small(seed, out):
    rng = random.Random(seed)
    t = Text(rng)
    out.write(b"feature done\n")
    who = "%s %s" % (rng.choice(FIRST), rng.choice(LAST))
    email = who.lower().replace(" ", ".") + "@example.org"
    clock = 1577836800 + rng.randrange(0, 3 * 365 * 86400)
    lang = rng.choice(("rs", "c", "py"))
    files = {"README.md": t.new_file("md", rng.randrange(1, 4))}
    for _ in range(rng.randrange(2, 6)):
        files["src/%s_%s%s" % (rng.choice(VERBS), rng.choice(NOUNS), EXT[lang])] = t.new_file(lang, rng.randrange(1, 6))
    files["LICENSE"] = ["MIT License\n", "\n", "Copyright (c) %s\n" % who]
    for i in range(1, 13):
        clock += rng.randrange(600, 86400 * 3)
        if i == 1:
            changes = list(files.items())
            msg = "Initial commit\n"
        else:
            p = rng.choice([p for p in files if p != "LICENSE"])
            files[p] = t.edit("md" if p.endswith(".md") else lang, files[p], 400)
            changes = [(p, files[p])]
            msg = "%s %s\n" % (rng.choice(SUBJ_VERBS), p.split("/")[-1])
        out.write(b"commit refs/heads/main\nmark :%d\n" % i)
        ident = ("%s <%s> %d +0000\n" % (who, email, clock)).encode()
        out.write(b"author " + ident + b"committer " + ident)
        data(out, msg)
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        for p, lines in changes:
            out.write(b"M 100644 inline %s\n" % p.encode())
            data(out, blob(lines))
        out.write(b"reset refs/tags/c%d\nfrom :%d\n\n" % (i, i))
    out.write(b"done\n")
    out.flush()


# ----------------------------------------------------------------------------------------------
# A site of many small repositories, made from a few templates without running git per
# repository: each repository is a folder of hard links to one template's pack (git never
# changes a pack or an index in place, and forgelet replaces files by renaming) and files of its
# own (config, description, packed-refs) pointing main at one of the template's commits.

BASE_CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
    "\tlogallrefupdates = true\n[receive]\n\tfsckObjects = true\n\tautogc = false\n"
    "[forgelet]\n\tvisibility = %s\n"
)


def site(a):
    import os
    import subprocess

    rng = random.Random(0x517E_0000 + a.repos)
    templates = []
    for t in sorted(os.listdir(a.templates)):
        path = os.path.join(a.templates, t)
        refs = subprocess.run(["git", "-C", path, "for-each-ref", "--format=%(refname) %(objectname)",
                               "refs/tags/"], check=True, capture_output=True, text=True).stdout
        ids = {}
        for line in refs.splitlines():
            name, oid = line.split()
            ids[int(name[len("refs/tags/c"):])] = oid
        packs = sorted(os.listdir(os.path.join(path, "objects", "pack")))
        if not any(p.endswith(".pack") for p in packs):
            sys.exit("gen_repo.py: template %s has no pack (its objects must all be in one)" % path)
        templates.append((path, [ids[i] for i in sorted(ids)], packs))
    if not templates:
        sys.exit("gen_repo.py: no templates in %s" % a.templates)
    users = site_users(a.users)
    # A few users own most repositories (Zipf-like weights).
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(users))]
    owners = rng.choices(users, weights, k=a.repos)
    # Every user owns at least one repository.
    for i, u in enumerate(users):
        owners[i * (a.repos // len(users))] = u
    repos_dir = os.path.join(a.dest, "repos")
    os.makedirs(repos_dir)
    taken = {u: set() for u in users}
    private = 0
    for i, owner in enumerate(owners):
        odir = os.path.join(repos_dir, owner)
        if not taken[owner]:
            os.mkdir(odir)
        name = "%s-%s" % (rng.choice(VERBS), rng.choice(NOUNS))
        while name.lower() in taken[owner]:
            name = "%s-%s-%d" % (rng.choice(VERBS), rng.choice(NOUNS), rng.randrange(100))
        taken[owner].add(name.lower())
        tpath, ids, packs = templates[i % len(templates)]
        d = os.path.join(odir, name + ".git")
        for sub in ("objects/pack", "objects/info", "refs/heads", "refs/tags", "info"):
            os.makedirs(os.path.join(d, sub))
        for p in packs:
            os.link(os.path.join(tpath, "objects", "pack", p), os.path.join(d, "objects", "pack", p))
        head = rng.randrange(2, len(ids) + 1)
        refs = [("refs/heads/main", ids[head - 1])]
        if rng.randrange(4) == 0:
            refs.append(("refs/heads/dev", ids[-1]))
        if head >= 4 and rng.randrange(3) == 0:
            refs.append(("refs/tags/v0.1.0", ids[2]))
        refs.sort()
        with open(os.path.join(d, "packed-refs"), "w") as f:
            f.write("# pack-refs with: peeled fully-peeled sorted \n")
            for r, oid in refs:
                f.write("%s %s\n" % (oid, r))
        with open(os.path.join(d, "HEAD"), "w") as f:
            f.write("ref: refs/heads/main\n")
        vis = "private" if rng.randrange(10) == 0 else "public"
        private += vis == "private"
        with open(os.path.join(d, "config"), "w") as f:
            f.write(BASE_CONFIG % vis)
        with open(os.path.join(d, "description"), "w") as f:
            f.write(Text(rng).prose_line())
    counts = sorted((len(v) for v in taken.values()), reverse=True)
    sys.stderr.write("gen_repo.py: %d repositories (%d private) of %d users (most %d, fewest %d) "
                     "from %d templates\n" % (a.repos, private, len(users), counts[0], counts[-1],
                                             len(templates)))


def site_users(n):
    """n user names, first.last, unique ignoring case."""
    rng = random.Random(0x05E2_0000 + n)
    users = []
    while len(users) < n:
        u = "%s.%s" % (rng.choice(FIRST).lower(), rng.choice(LAST).lower())
        if u.lower() not in (x.lower() for x in users):
            users.append(u)
    return users


def main():
    ap = argparse.ArgumentParser(description="deterministic fast-import streams for forgelet's benchmarks")
    sub = ap.add_subparsers(dest="what", required=True)
    lg = sub.add_parser("large")
    lg.add_argument("--commits", type=int, default=100_000)
    lg.add_argument("--binary-every", type=int, default=700)
    lg.add_argument("--deleted-refs")
    sm = sub.add_parser("small")
    sm.add_argument("seeds", type=int, nargs="+")
    sm.add_argument("--out", help="write each stream to OUT/tSEED.fi instead of stdout")
    st = sub.add_parser("site")
    st.add_argument("dest", help="the data folder to fill (repos/ and users.toml)")
    st.add_argument("templates", help="a folder of bare template repositories made by `small`")
    st.add_argument("--repos", type=int, default=10_000)
    st.add_argument("--users", type=int, default=100)
    us = sub.add_parser("users")
    us.add_argument("users", type=int)
    a = ap.parse_args()
    if sys.version_info < (3, 9):
        sys.exit("gen_repo.py: Python 3.9 or later is needed (random.randbytes)")
    if a.what == "large":
        if a.commits < 10 or a.binary_every < 1:
            sys.exit("gen_repo.py: --commits must be at least 10 and --binary-every at least 1")
        Large(a).run()
    elif a.what == "small":
        if a.out is None and len(a.seeds) > 1:
            sys.exit("gen_repo.py: several seeds need --out")
        for seed in a.seeds:
            out = Out()
            if a.out is not None:
                out.raw = open("%s/t%d.fi" % (a.out, seed), "wb")
            small(seed, out)
            if a.out is not None:
                out.raw.close()
    elif a.what == "users":
        for u in site_users(a.users):
            print(u)
    else:
        if a.repos < a.users or a.users < 1:
            sys.exit("gen_repo.py: --repos must be at least --users, and --users at least 1")
        site(a)


if __name__ == "__main__":
    main()
