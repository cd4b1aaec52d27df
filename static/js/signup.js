// Suggest a web address from the shop name until the owner types one.
// Names without Latin letters (e.g. Chinese) suggest nothing: the owner writes it.
(function () {
  var name = document.getElementById("id_shop_name");
  var slug = document.getElementById("id_slug");
  if (!name || !slug) return;
  var touched = slug.value !== "";
  slug.addEventListener("input", function () { touched = slug.value !== ""; });
  name.addEventListener("input", function () {
    if (touched) return;
    slug.value = name.value
      .normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
      .slice(0, 60);
  });
})();
