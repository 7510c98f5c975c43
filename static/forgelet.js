// forgelet's one script: a copy button for the clone URL, and dates read as "3 days ago".
// Every page works without it.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.getAttribute("data-copy"));
  if (!field) return;
  var done = function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
  } else {
    field.select();
    document.execCommand("copy");
    done();
  }
});

// A date is written in the page as its exact time with its zone (`<time datetime=... title=...>`):
// shown here as how long ago it was, the exact time staying on hover. Pages are kept in a cache,
// so this is worked out by the reader's clock, not when the page was made.
(function () {
  var units = [["year", 31557600], ["month", 2629800], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60]];
  var now = Date.now() / 1000;
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var then = Date.parse(el.getAttribute("datetime")) / 1000;
    if (isNaN(then)) return;
    var ago = now - then;
    var text = "just now";
    if (ago < 0) text = "in the future";
    for (var i = 0; ago >= 60 && i < units.length; i++) {
      var n = Math.floor(ago / units[i][1]);
      if (n >= 1) {
        text = n === 1 ? (units[i][0] === "hour" ? "an hour ago" : "a " + units[i][0] + " ago")
          : n + " " + units[i][0] + "s ago";
        break;
      }
    }
    el.textContent = text;
  });
})();
