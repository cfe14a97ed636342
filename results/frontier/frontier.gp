set terminal pngcairo size 1100,700 font ',10' noenhanced
set output 'docs/plots/frontier.png'
set title 'Perplexity against stored bits per weight (models/ref-llama, llama-perplexity ctx 512, test)'
set xlabel 'bits per weight of the decoder linear layers'
set ylabel 'perplexity (test)'
set key top right
set grid
set yrange [51.6702:*]
set arrow from graph 0, first 52.6702 to graph 1, first 52.6702 nohead dt 2
set label 'FP 52.67' at graph 0.02, first 53.0702
plot 'results/frontier/frontier.dat' index 0 using 1:2 with linespoints pt 7 lc rgb '#c0392b' title 'llama.cpp (imatrix)', \
     '' index 0 using 1:2:4 with labels left offset 0.5,0.6 font ',8' notitle, \
     'results/frontier/frontier.dat' index 1 using 1:2 with points pt 5 ps 1.3 lc rgb '#2471a3' title 'pbs2p', \
     '' index 1 using 1:2:4 with labels right offset -0.5,-0.6 font ',8' notitle
