// forgelet's one script: a copy button for the clone URL, and a README's headings found by the
// addresses GitHub gives them. Every page works without it.
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

// A README's ids carry a prefix (user-content-) so that it cannot take the page's own; an address
// made on GitHub, ending in #getting-started, still reaches its heading.
function toReadmeHeading() {
  var name;
  try { name = decodeURIComponent(location.hash.slice(1)); } catch (e) { return; }
  if (!name || document.getElementById(name)) return;
  var target = document.getElementById("user-content-" + name);
  if (target) target.scrollIntoView();
}
window.addEventListener("hashchange", toReadmeHeading);
toReadmeHeading();
