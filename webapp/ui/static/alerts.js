// The alerts inbox refreshes its list every few seconds (a meta refresh does it where script is off).
(function () {
  var box = document.getElementById('alerts');
  if (!box) return;
  var every = parseInt(box.dataset.refresh, 10) * 1000;
  setInterval(function () {
    if (box.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return;
    fetch(box.dataset.src, {credentials: 'same-origin'}).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; });
  }, every);
})();
