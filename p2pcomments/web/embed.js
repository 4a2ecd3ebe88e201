/* p2pcomments: paste <div data-p2pc-url="https://blog.example/post" data-p2pc-owner="key_…"></div>
   and <script src="https://NODE/embed.js" async></script>. This loader is a classic script (so it
   works with async and without type=module); the widget itself is ES modules beside it. */
(function () {
  var script = document.currentScript || document.querySelector('script[src*="embed.js"]');
  var base = script ? script.src : location.href;
  function start() {
    import(new URL("web/widget.js", base).href).then(function (widget) {
      return widget.mountAll(base);
    }).catch(function (error) {
      console.error("p2pcomments:", error);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
