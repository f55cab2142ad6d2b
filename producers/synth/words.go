package synth

// category is one leaf of the synthetic shop's taxonomy with the words its
// items are made of. English and Chinese word lists run in parallel where an
// index is shared (adjs/zhAdjs, features/zhFeatures, uses/zhUses).
type category struct {
	path               []string
	nouns              []string
	zhNoun             string
	adjs, zhAdjs       []string
	brands             []string
	variants           []string // appended to a title; "" for none
	features           []string
	zhFeatures         []string
	uses, zhUses       []string
	materials          []string
	sizes              []string // nil: the category has no size attribute
	colored            bool
	minPrice, maxPrice float64
}

// color is a color name in English and Chinese.
type color struct{ en, zh string }

var colors = []color{
	{"Black", "黑色"}, {"White", "白色"}, {"Silver", "银色"}, {"Navy Blue", "藏青色"},
	{"Red", "红色"}, {"Forest Green", "墨绿色"}, {"Gray", "灰色"}, {"Rose Gold", "玫瑰金"},
	{"Beige", "米色"}, {"Sky Blue", "天蓝色"},
}

// materialZH translates the materials used below.
var materialZH = map[string]string{
	"aluminum": "铝合金", "plastic": "塑料", "silicone": "硅胶", "leather": "皮革",
	"cotton": "棉", "organic cotton": "有机棉", "polyester": "涤纶", "merino wool": "美利奴羊毛",
	"stainless steel": "不锈钢", "cast iron": "铸铁", "ceramic": "陶瓷", "bamboo": "竹",
	"memory foam": "记忆棉", "nylon": "尼龙", "mesh": "网布", "glass": "玻璃", "oak": "橡木",
	"paper": "纸", "rubber": "橡胶", "linen": "亚麻", "down": "羽绒", "ABS": "ABS塑料",
}

var taxonomy = []category{
	{
		path: []string{"Electronics", "Audio", "Headphones"}, nouns: []string{"Headphones", "Earbuds", "Headset"}, zhNoun: "耳机",
		adjs: []string{"Wireless", "Noise-Cancelling", "Over-Ear", "Bluetooth", "Studio", "Sport"}, zhAdjs: []string{"无线", "降噪", "头戴式", "蓝牙", "录音室级", "运动"},
		brands: []string{"Sonora", "AudioCraft", "Bassline", "Veltro"}, variants: []string{"", "Pro", "2nd Gen", "Lite"},
		features: []string{"active noise cancellation", "a 30-hour battery", "multipoint Bluetooth 5.3", "memory foam ear cushions"}, zhFeatures: []string{"主动降噪", "30小时续航", "蓝牙5.3多点连接", "记忆棉耳垫"},
		uses: []string{"commuting", "long flights", "working out", "focused work"}, zhUses: []string{"通勤", "长途飞行", "健身", "专注工作"},
		materials: []string{"aluminum", "plastic", "leather"}, colored: true, minPrice: 19, maxPrice: 399,
	},
	{
		path: []string{"Electronics", "Audio", "Speakers"}, nouns: []string{"Speaker", "Soundbar", "Smart Speaker"}, zhNoun: "音箱",
		adjs: []string{"Portable", "Waterproof", "Bluetooth", "Smart", "Compact", "Outdoor"}, zhAdjs: []string{"便携", "防水", "蓝牙", "智能", "小巧", "户外"},
		brands: []string{"Sonora", "Bassline", "Echoroom"}, variants: []string{"", "Mini", "Max", "2.1"},
		features: []string{"360-degree sound", "deep bass", "an IP67 rating", "voice assistant support"}, zhFeatures: []string{"360度环绕音效", "强劲低音", "IP67防水", "语音助手"},
		uses: []string{"beach trips", "parties", "the living room", "camping"}, zhUses: []string{"海边出游", "聚会", "客厅", "露营"},
		materials: []string{"plastic", "aluminum", "rubber"}, colored: true, minPrice: 25, maxPrice: 499,
	},
	{
		path: []string{"Electronics", "Computers", "Laptops"}, nouns: []string{"Laptop", "Notebook", "Ultrabook"}, zhNoun: "笔记本电脑",
		adjs: []string{"Thin", "Lightweight", "Gaming", "14-Inch", "Touchscreen", "Business"}, zhAdjs: []string{"轻薄", "超轻", "游戏", "14英寸", "触屏", "商务"},
		brands: []string{"Nimbus", "Arcwave", "Kestrel"}, variants: []string{"16GB/512GB", "8GB/256GB", "32GB/1TB"},
		features: []string{"an all-day battery", "a 2.8K OLED display", "a backlit keyboard", "Wi-Fi 7"}, zhFeatures: []string{"全天续航", "2.8K OLED屏幕", "背光键盘", "Wi-Fi 7"},
		uses: []string{"students", "remote work", "video editing", "travel"}, zhUses: []string{"学生", "远程办公", "视频剪辑", "出差"},
		materials: []string{"aluminum", "plastic"}, colored: true, minPrice: 399, maxPrice: 2499,
	},
	{
		path: []string{"Electronics", "Accessories", "Chargers"}, nouns: []string{"Charger", "Power Bank", "Charging Cable"}, zhNoun: "充电器",
		adjs: []string{"Fast", "USB-C", "65W", "Magnetic", "Travel", "Dual-Port"}, zhAdjs: []string{"快充", "USB-C", "65W", "磁吸", "旅行", "双口"},
		brands: []string{"Voltix", "Arcwave", "Charj"}, variants: []string{"", "2-Pack", "10000mAh", "6 ft"},
		features: []string{"GaN technology", "overheat protection", "a foldable plug", "pass-through charging"}, zhFeatures: []string{"氮化镓技术", "过热保护", "折叠插脚", "边充边放"},
		uses: []string{"phones and tablets", "travel", "the office", "laptops"}, zhUses: []string{"手机和平板", "旅行", "办公室", "笔记本电脑"},
		materials: []string{"plastic", "nylon", "aluminum"}, colored: true, minPrice: 9, maxPrice: 89,
	},
	{
		path: []string{"Home & Kitchen", "Kitchen", "Coffee Makers"}, nouns: []string{"Coffee Maker", "Espresso Machine", "Drip Coffee Maker"}, zhNoun: "咖啡机",
		adjs: []string{"Programmable", "12-Cup", "Compact", "Automatic", "Single-Serve", "Stainless"}, zhAdjs: []string{"可编程", "大容量", "小巧", "全自动", "单杯", "不锈钢"},
		brands: []string{"Brewhaus", "Morning Co.", "Caffio"}, variants: []string{"", "Deluxe", "with Grinder"},
		features: []string{"a built-in grinder", "a thermal carafe", "a 15-bar pump", "auto shut-off"}, zhFeatures: []string{"内置磨豆器", "保温壶", "15巴压力泵", "自动断电"},
		uses: []string{"busy mornings", "small kitchens", "the office", "coffee lovers"}, zhUses: []string{"忙碌的早晨", "小厨房", "办公室", "咖啡爱好者"},
		materials: []string{"stainless steel", "glass", "plastic"}, colored: true, minPrice: 24, maxPrice: 699,
	},
	{
		path: []string{"Home & Kitchen", "Cookware", "Pans"}, nouns: []string{"Frying Pan", "Skillet", "Wok"}, zhNoun: "炒锅",
		adjs: []string{"Nonstick", "Cast Iron", "10-Inch", "Induction-Ready", "Ceramic", "Pre-Seasoned"}, zhAdjs: []string{"不粘", "铸铁", "10英寸", "电磁炉适用", "陶瓷", "预开锅"},
		brands: []string{"Hearthstone", "Chef's Table", "Ironwood"}, variants: []string{"", "with Lid", "2-Piece Set"},
		features: []string{"even heat distribution", "a stay-cool handle", "a PFOA-free coating", "oven safety to 500°F"}, zhFeatures: []string{"受热均匀", "防烫手柄", "无PFOA涂层", "可进烤箱"},
		uses: []string{"everyday cooking", "searing steak", "stir-fries", "camping"}, zhUses: []string{"日常烹饪", "煎牛排", "爆炒", "露营"},
		materials: []string{"cast iron", "stainless steel", "ceramic", "aluminum"}, minPrice: 15, maxPrice: 249,
	},
	{
		path: []string{"Home & Kitchen", "Bedding", "Pillows"}, nouns: []string{"Pillow", "Pillow Set", "Body Pillow"}, zhNoun: "枕头",
		adjs: []string{"Cooling", "Memory Foam", "Hypoallergenic", "Down", "Ergonomic", "Adjustable"}, zhAdjs: []string{"凉感", "记忆棉", "防过敏", "羽绒", "人体工学", "可调节"},
		brands: []string{"Dreamwell", "Cloudnest", "Linenfield"}, variants: []string{"", "2-Pack", "Queen", "King"},
		features: []string{"a breathable cover", "neck support", "a washable case", "shredded foam fill"}, zhFeatures: []string{"透气枕套", "颈部支撑", "可水洗枕套", "碎记忆棉填充"},
		uses: []string{"side sleepers", "hot sleepers", "guest rooms", "back pain relief"}, zhUses: []string{"侧睡", "怕热人群", "客房", "缓解背痛"},
		materials: []string{"memory foam", "down", "cotton", "bamboo"}, sizes: []string{"Standard", "Queen", "King"}, colored: true, minPrice: 19, maxPrice: 149,
	},
	{
		path: []string{"Clothing", "Men", "T-Shirts"}, nouns: []string{"T-Shirt", "Crew Neck Tee", "Henley"}, zhNoun: "T恤",
		adjs: []string{"Classic", "Slim-Fit", "Organic", "Heavyweight", "Pocket", "Performance"}, zhAdjs: []string{"经典", "修身", "有机", "厚款", "口袋", "速干"},
		brands: []string{"Northway", "Common Thread", "Ridgeline"}, variants: []string{"", "3-Pack", "Long Sleeve"},
		features: []string{"a tagless collar", "pre-shrunk fabric", "moisture-wicking fabric", "reinforced seams"}, zhFeatures: []string{"无标领口", "预缩面料", "吸湿排汗", "加固缝线"},
		uses: []string{"everyday wear", "the gym", "layering", "weekends"}, zhUses: []string{"日常穿着", "健身", "叠穿", "周末休闲"},
		materials: []string{"cotton", "organic cotton", "polyester", "merino wool"}, sizes: []string{"S", "M", "L", "XL", "XXL"}, colored: true, minPrice: 9, maxPrice: 59,
	},
	{
		path: []string{"Clothing", "Women", "Dresses"}, nouns: []string{"Dress", "Midi Dress", "Wrap Dress"}, zhNoun: "连衣裙",
		adjs: []string{"Floral", "Casual", "Sleeveless", "Linen", "Summer", "Pleated"}, zhAdjs: []string{"碎花", "休闲", "无袖", "亚麻", "夏季", "百褶"},
		brands: []string{"Marlowe", "Luna & Fern", "Common Thread"}, variants: []string{"", "Petite", "Tall"},
		features: []string{"hidden pockets", "an adjustable waist tie", "a fully lined skirt", "a relaxed fit"}, zhFeatures: []string{"隐藏口袋", "可调节腰带", "全衬里裙摆", "宽松版型"},
		uses: []string{"summer days", "the office", "weddings", "vacations"}, zhUses: []string{"夏日", "通勤", "婚礼", "度假"},
		materials: []string{"linen", "cotton", "polyester"}, sizes: []string{"XS", "S", "M", "L", "XL"}, colored: true, minPrice: 29, maxPrice: 189,
	},
	{
		path: []string{"Shoes", "Athletic", "Running Shoes"}, nouns: []string{"Running Shoes", "Trail Runners", "Sneakers"}, zhNoun: "跑鞋",
		adjs: []string{"Lightweight", "Cushioned", "Breathable", "Trail", "Wide", "Carbon-Plated"}, zhAdjs: []string{"轻量", "缓震", "透气", "越野", "宽楦", "碳板"},
		brands: []string{"Stride", "Apex Athletics", "Ridgeline"}, variants: []string{"", "v2", "GTX"},
		features: []string{"responsive foam cushioning", "a grippy rubber outsole", "a breathable mesh upper", "a reflective heel"}, zhFeatures: []string{"回弹泡棉中底", "防滑橡胶大底", "透气网面鞋面", "反光鞋跟"},
		uses: []string{"daily training", "marathons", "trail running", "walking"}, zhUses: []string{"日常训练", "马拉松", "越野跑", "健走"},
		materials: []string{"mesh", "rubber", "nylon"}, sizes: []string{"7", "8", "9", "10", "11", "12"}, colored: true, minPrice: 49, maxPrice: 249,
	},
	{
		path: []string{"Sports & Outdoors", "Camping", "Tents"}, nouns: []string{"Tent", "Backpacking Tent", "Dome Tent"}, zhNoun: "帐篷",
		adjs: []string{"2-Person", "4-Person", "Ultralight", "Waterproof", "Instant", "4-Season"}, zhAdjs: []string{"双人", "四人", "超轻", "防水", "速开", "四季"},
		brands: []string{"Trailhead", "Summit Gear", "Ridgeline"}, variants: []string{"", "with Footprint", "XL"},
		features: []string{"a full rainfly", "two doors and vestibules", "color-coded poles", "taped seams"}, zhFeatures: []string{"全覆盖防雨罩", "双门双前庭", "彩色标记帐杆", "压胶接缝"},
		uses: []string{"backpacking", "family camping", "festivals", "alpine trips"}, zhUses: []string{"徒步露营", "家庭露营", "音乐节", "高山探险"},
		materials: []string{"nylon", "polyester", "aluminum"}, colored: true, minPrice: 59, maxPrice: 649,
	},
	{
		path: []string{"Sports & Outdoors", "Fitness", "Yoga Mats"}, nouns: []string{"Yoga Mat", "Exercise Mat", "Travel Mat"}, zhNoun: "瑜伽垫",
		adjs: []string{"Non-Slip", "Extra Thick", "Eco-Friendly", "Foldable", "Cushioned", "Alignment"}, zhAdjs: []string{"防滑", "加厚", "环保", "可折叠", "缓冲", "体位线"},
		brands: []string{"Zenflow", "Apex Athletics", "Lotus Lane"}, variants: []string{"", "6mm", "with Strap"},
		features: []string{"a textured grip", "alignment lines", "a carrying strap", "a sweat-resistant surface"}, zhFeatures: []string{"纹理防滑", "体位线设计", "附赠背带", "防汗表面"},
		uses: []string{"hot yoga", "pilates", "home workouts", "stretching"}, zhUses: []string{"高温瑜伽", "普拉提", "居家健身", "拉伸"},
		materials: []string{"rubber", "silicone", "cotton"}, colored: true, minPrice: 15, maxPrice: 129,
	},
	{
		path: []string{"Beauty", "Skincare", "Moisturizers"}, nouns: []string{"Moisturizer", "Face Cream", "Night Cream"}, zhNoun: "面霜",
		adjs: []string{"Hydrating", "Fragrance-Free", "Vitamin C", "Oil-Free", "Anti-Aging", "Gentle"}, zhAdjs: []string{"保湿", "无香", "维C", "清爽控油", "抗初老", "温和"},
		brands: []string{"Dewleaf", "Pure Botanica", "Lumen Skin"}, variants: []string{"1.7 oz", "3.4 oz", "Travel Size"},
		features: []string{"hyaluronic acid", "ceramides", "SPF 30", "niacinamide"}, zhFeatures: []string{"玻尿酸", "神经酰胺", "SPF30防晒", "烟酰胺"},
		uses: []string{"dry skin", "sensitive skin", "daily use", "overnight repair"}, zhUses: []string{"干性肌肤", "敏感肌", "日常护理", "夜间修护"},
		materials: []string{"glass", "plastic"}, minPrice: 8, maxPrice: 120,
	},
	{
		path: []string{"Toys & Games", "Building Toys", "Building Sets"}, nouns: []string{"Building Set", "Brick Kit", "Construction Set"}, zhNoun: "积木",
		adjs: []string{"Creative", "STEM", "Space Station", "Castle", "Race Car", "Robot"}, zhAdjs: []string{"创意", "益智", "空间站", "城堡", "赛车", "机器人"},
		brands: []string{"Brickworks", "Tinker Town", "PlayForge"}, variants: []string{"", "500 Pieces", "1200 Pieces"},
		features: []string{"step-by-step instructions", "compatible bricks", "motorized parts", "a storage box"}, zhFeatures: []string{"分步说明书", "通用积木颗粒", "电动部件", "收纳盒"},
		uses: []string{"kids ages 8 and up", "family game nights", "gifts", "classrooms"}, zhUses: []string{"8岁以上儿童", "家庭游戏之夜", "礼物", "课堂"},
		materials: []string{"ABS", "plastic"}, minPrice: 12, maxPrice: 299,
	},
	{
		path: []string{"Pet Supplies", "Dogs", "Dog Beds"}, nouns: []string{"Dog Bed", "Pet Bed", "Crate Mat"}, zhNoun: "狗窝",
		adjs: []string{"Orthopedic", "Calming", "Washable", "Waterproof", "Bolster", "Elevated"}, zhAdjs: []string{"护脊", "安抚", "可水洗", "防水", "靠枕式", "离地"},
		brands: []string{"Pawsome", "Barkley & Co.", "Cozy Tails"}, variants: []string{"", "Large", "Medium", "Small"},
		features: []string{"a removable cover", "a non-skid bottom", "egg-crate foam", "raised edges"}, zhFeatures: []string{"可拆洗外套", "防滑底部", "蛋槽海绵", "凸起边缘"},
		uses: []string{"senior dogs", "large breeds", "puppies", "crates"}, zhUses: []string{"老年犬", "大型犬", "幼犬", "狗笼"},
		materials: []string{"memory foam", "polyester", "cotton"}, sizes: []string{"S", "M", "L", "XL"}, colored: true, minPrice: 19, maxPrice: 159,
	},
	{
		path: []string{"Office Products", "Stationery", "Notebooks"}, nouns: []string{"Notebook", "Journal", "Planner"}, zhNoun: "笔记本",
		adjs: []string{"Dotted", "Hardcover", "A5", "Lined", "Spiral", "Undated"}, zhAdjs: []string{"点阵", "硬面", "A5", "横线", "线圈", "无日期"},
		brands: []string{"Inkwell", "Paperline", "Studio Nord"}, variants: []string{"", "2-Pack", "192 Pages"},
		features: []string{"thick 120gsm paper", "a ribbon bookmark", "numbered pages", "an elastic closure"}, zhFeatures: []string{"120克加厚纸张", "丝带书签", "页码标注", "松紧带封口"},
		uses: []string{"bullet journaling", "meeting notes", "sketching", "school"}, zhUses: []string{"手帐", "会议记录", "速写", "上学"},
		materials: []string{"paper", "leather", "linen"}, colored: true, minPrice: 6, maxPrice: 45,
	},
}

// Context vocabularies for sessions.
var (
	locales = []weighted{{"en-US", 50}, {"en-GB", 10}, {"en-CA", 5}, {"de-DE", 6}, {"fr-FR", 5}, {"es-ES", 4}, {"ja-JP", 3}, {"zh-CN", 12}, {"zh-TW", 2}, {"pt-BR", 3}}
	devices = []weighted{{"mobile", 58}, {"desktop", 35}, {"tablet", 7}}
	// landing pages where a session's views start when it has no search.
	browsePages = []weighted{{"home", 45}, {"category", 35}, {"recommendations", 20}}
)

// weighted is a value with a relative weight.
type weighted struct {
	v string
	w float64
}
