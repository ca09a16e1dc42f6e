// Process diagrams at their natural size: zoom buttons, drag to pan, and the current step brought into view.
(function () {
  function setScale(box, scale) {
    var svg = box.querySelector('svg.bpmn');
    if (!svg) return;
    scale = Math.max(0.2, Math.min(3, scale));
    box.dataset.scale = scale;
    svg.setAttribute('width', Math.round(svg.dataset.width * scale));
    svg.setAttribute('height', Math.round(svg.dataset.height * scale));
  }
  function fit(box) {
    var svg = box.querySelector('svg.bpmn');
    if (svg) setScale(box, Math.min(1, (box.clientWidth - 16) / svg.dataset.width));
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-zoom]');
    if (!button) return;
    var box = document.getElementById(button.closest('.diagram-tools').dataset.for);
    var scale = parseFloat(box.dataset.scale || '1');
    var how = button.dataset.zoom;
    if (how === 'in') setScale(box, scale * 1.25);
    else if (how === 'out') setScale(box, scale / 1.25);
    else if (how === 'fit') fit(box);
    else setScale(box, 1);
  });
  document.querySelectorAll('.diagram').forEach(function (box) {
    var start = null;
    box.addEventListener('pointerdown', function (event) {
      if (event.pointerType !== 'mouse') return;  // touch scrolls natively
      start = {x: event.clientX, y: event.clientY, left: box.scrollLeft, top: box.scrollTop};
      box.classList.add('dragging');
    });
    window.addEventListener('pointermove', function (event) {
      if (!start) return;
      box.scrollLeft = start.left - (event.clientX - start.x);
      box.scrollTop = start.top - (event.clientY - start.y);
    });
    window.addEventListener('pointerup', function () { start = null; box.classList.remove('dragging'); });
    var active = box.querySelector('g.active');
    if (active && active.getBoundingClientRect) {
      var a = active.getBoundingClientRect(), b = box.getBoundingClientRect();
      box.scrollLeft += (a.left + a.width / 2) - (b.left + b.width / 2);
      box.scrollTop += (a.top + a.height / 2) - (b.top + b.height / 2);
    }
  });
})();
