//! Integration tests: the built forgelet binary behind real nginx (the shipped snippet), in CGI
//! mode and straight on its FastCGI socket, checked against what real git produces. Each module
//! holds one group of tests; `util` holds the harness they share.

mod accounts;
mod architecture;
mod blame_search;
mod cli;
mod doctor;
mod dumb;
mod fastcgi;
mod faults;
mod faults_disk;
mod frontends;
mod fuzz_corpus;
mod hardening;
mod highlight;
mod hostile;
mod hosts;
mod hosts_systemd;
mod large_pages;
mod lfs;
mod load;
mod maintain;
mod packcache;
mod permissions;
mod push;
mod reading;
mod repo_lists;
mod smart;
mod ssh;
mod ssh_serve;
mod unserved;
mod util;
mod web;
