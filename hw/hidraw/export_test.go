package hidraw

var (
	HIDIOCSFEATURE = hidiocsfeature
	HIDIOCGFEATURE = hidiocgfeature
)
