set terminal pngcairo size 900,500 font 'Sans,10'
set output 'docs/plots/zeroshot/cfs_ref-llama-deep.png'
set title 'CFS coarse stage (ref-llama-deep, PBS2P 4:8): block importance and allocated N'
set xlabel 'decoder block'
set ylabel 'importance (mean 1)'
set y2label 'kept N of 8'
set ytics nomirror
set y2tics 1
set y2range [0:8]
set yrange [0:*]
set style fill solid 0.5
set boxwidth 0.6
set grid y
set key top right
set xtics 1
set xrange [-0.6:11.6]
plot 'docs/plots/zeroshot/cfs_ref-llama-deep.dat' using 1:2 with boxes lc rgb '#4477aa' title 'importance', 1 dt 2 lc rgb '#333333' title 'average importance', 'docs/plots/zeroshot/cfs_ref-llama-deep.dat' using 1:3 axes x1y2 with linespoints pt 7 lc rgb '#cc3311' title 'N per block'
