// bench report: inlined into every report.html (bench/report/html.py).
// Sorting: numbers by the cell's data-sort value, empty cells always last; and, for checking that the
// page rendered, the count of decoded images written onto <body> once everything has loaded.
(function () {
  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null || raw === "") return null;
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortTable(table, column, header) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (first, second) {
      var a = sortKey(first.cells[column]), b = sortKey(second.cells[column]);
      if (a === null || b === null) return (a === null) - (b === null);
      if (a < b) return ascending ? -1 : 1;
      if (a > b) return ascending ? 1 : -1;
      return 0;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.querySelector("button").addEventListener("click", function () { sortTable(table, column, header); });
    });
  });
  window.addEventListener("load", function () {
    var decoded = 0;
    Array.prototype.forEach.call(document.images, function (image) {
      if (image.complete && image.naturalWidth > 0) decoded += 1;
    });
    document.body.setAttribute("data-images-total", String(document.images.length));
    document.body.setAttribute("data-images-decoded", String(decoded));
  });
})();
