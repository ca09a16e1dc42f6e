// Print buttons (no inline handlers: the Content-Security-Policy allows script files only).
document.addEventListener('click', function (event) {
  if (event.target.closest('[data-print]')) window.print();
});
